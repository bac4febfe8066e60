// A fetch-client process of `pnpm demo:http`: calls URL with PARAMS through @heartwire/http/client
// and prints one JSON line per event. argv: url, params JSON, and 'abort-after-ms' (optional).
import { call } from '@heartwire/http/client';

const [url, paramsJson, abortAfter] = process.argv.slice(2);
const say = (event, more = {}) => process.stdout.write(`${JSON.stringify({ event, ...more })}\n`);
const controller = new AbortController();
try {
  const result = await call(url, JSON.parse(paramsJson), {
    signal: controller.signal,
    onAccepted: (e) => {
      say('accepted', { id: e.id });
      if (abortAfter !== undefined) setTimeout(() => controller.abort(), Number(abortAfter));
    },
    onProgress: (data) => say('progress', { data }),
  });
  say('result', { result });
} catch (err) {
  say('error', { code: err.code, message: err.message });
}

// The demo's client: one 'render' call; argv[2]: JSON { port, scene, ms, cancelAfterMs }.
import { connect } from '@heartwire/client';

const { port, scene, ms, cancelAfterMs } = JSON.parse(process.argv[2]);
const say = (event, fields = {}) => process.stdout.write(`${JSON.stringify({ event, scene, t: performance.timeOrigin + performance.now(), ...fields })}\n`);
const client = await connect({ host: '127.0.0.1', port });
const controller = new AbortController();
if (cancelAfterMs !== undefined) setTimeout(() => controller.abort(), cancelAfterMs);
try {
  const result = await client.call('render', { scene, ms }, {
    signal: controller.signal,
    onAccepted: () => say('accepted'),
    onProgress: (p) => say('progress', p),
  });
  say('result', result);
} catch (err) {
  say('error', { code: err.code });
}
await client.close();

/**
 * `pnpm bench:http`: how long an HTTP server takes to stop a job once its
 * client is gone, from the moment the client goes (this process hangs up,
 * or kills or freezes a curl child) to the moment the job is told (for
 * heartwire, its signal aborts; for the others, the callback their docs
 * advise runs). And the rate of a short call against plain `node:http`.
 *
 * Systems, each written the usual way and listening as its docs advise:
 * - heartwire-http: `createHttpBridge(server).listener('job')` on node:http and node:http2;
 * - node-http: a handler that answers when the job is done and watches `res.on('close')`
 *   with `!res.writableFinished` (Node's docs: 'close' means the response completed or
 *   its connection was terminated prematurely), on node:http and node:http2 (compat API);
 * - express: Express 5, the same watch on `res` (Express documents none of its own);
 * - fastify: Fastify 5 (also `http2: true`), its guide "Detecting When Clients Abort":
 *   an onRequest hook with `request.raw.on('close', () => request.raw.aborted && …)`.
 *
 * Cases: hangup (this process closes the request: HTTP/1.1 `req.destroy()`, HTTP/2
 * RST_STREAM CANCEL), kill (curl, HTTP/1.1 or --http2-prior-knowledge, SIGKILLed),
 * frozen (curl over HTTP/2 SIGSTOPped; only PING can see it). A trial not detected
 * within its cap (INSTANT_CAP_MS for hangup and kill, CAP_MS for frozen) counts as
 * never (and when none of the first 10 trials of a case is detected, the case stops
 * there); one detected before the fault is a false verdict.
 *
 * Env: TRIALS (200, hangup and kill: enough that p99 is a percentile, not the
 * slowest trial), FROZEN_TRIALS (5, run at once), HEARTBEAT_MS (250), SILENT_MS
 * (1000), INSTANT_CAP_MS (500), CAP_MS (5000), SYSTEMS, PROTOCOLS, CASES (comma lists;
 * `rate` is a case), RATE_REPS (3), RATE_DURATION_MS (5000), RATE_CONNECTIONS (16).
 * A run narrowed by SYSTEMS, PROTOCOLS or CASES prints its table but writes no results
 * file: bench/results/http.json always holds a whole run.
 */
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { createServer, type CallContext } from '@heartwire/server';
import { createHttpBridge } from '@heartwire/http';
import { Waiter } from '../test/harness/waiter.js';
import { intEnv, listEnv } from './lib/env.js';
import { header, table, writeResults } from './lib/report.js';
import { median, round, summarize } from './lib/stats.js';

const SYSTEMS = ['heartwire-http', 'node-http', 'express', 'fastify'] as const;
const CASES = ['hangup', 'kill', 'frozen', 'rate'] as const;
const ALL_PROTOCOLS = ['h1', 'h2'] as const;
type SystemName = (typeof SYSTEMS)[number];
type CaseName = Exclude<(typeof CASES)[number], 'rate'>;
type Protocol = (typeof ALL_PROTOCOLS)[number];
/** Express has no HTTP/2 server of its own. */
const PROTOCOLS: Record<SystemName, readonly Protocol[]> = {
  'heartwire-http': ['h1', 'h2'],
  'node-http': ['h1', 'h2'],
  express: ['h1'],
  fastify: ['h1', 'h2'],
};

const TRIALS = intEnv('TRIALS', 200);
const FROZEN_TRIALS = intEnv('FROZEN_TRIALS', 5);
const HEARTBEAT_MS = intEnv('HEARTBEAT_MS', 250);
const SILENT_MS = intEnv('SILENT_MS', 1000);
const CAP_MS = intEnv('CAP_MS', 5000);
/** Hang-ups and kills take milliseconds where they are seen at all. */
const INSTANT_CAP_MS = intEnv('INSTANT_CAP_MS', 500);
const RATE_REPS = intEnv('RATE_REPS', 3);
const RATE_DURATION_MS = intEnv('RATE_DURATION_MS', 5000);
const RATE_CONNECTIONS = intEnv('RATE_CONNECTIONS', 16);
const RUN_SYSTEMS = listEnv('SYSTEMS', SYSTEMS);
const RUN_PROTOCOLS = listEnv('PROTOCOLS', ALL_PROTOCOLS);
const RUN_CASES = listEnv('CASES', CASES);
const WHOLE_RUN = RUN_SYSTEMS.length === SYSTEMS.length && RUN_PROTOCOLS.length === ALL_PROTOCOLS.length && RUN_CASES.length === CASES.length;
/** A job runs this long unless stopped: longer than any trial. */
const JOB_MS = CAP_MS + 30_000;

/** When each trial's job started and was told its client is gone, by trial number. */
class Trials {
  private readonly started = new Map<number, number>();
  private readonly aborted = new Map<number, number>();
  private readonly waiter = new Waiter();

  start(t: number): void {
    this.started.set(t, performance.now());
    this.waiter.wake();
  }

  abort(t: number): void {
    if (!this.aborted.has(t)) this.aborted.set(t, performance.now());
    this.waiter.wake();
  }

  whenStarted(t: number): Promise<number> {
    return this.waiter.until(() => this.started.get(t), `start of trial ${t}`, 20_000);
  }

  /** When trial `t` was aborted, or undefined if not within `capMs`. */
  whenAborted(t: number, capMs: number): Promise<number | undefined> {
    return this.waiter.until(() => this.aborted.get(t), `abort of trial ${t}`, capMs).catch(() => undefined);
  }
}

const trials = new Trials();
let nextTrial = 1;

/** Waits `JOB_MS` unless `signal` aborts first; what every system's job does. */
function job(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, JOB_MS);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const trialOf = (url: string | undefined): number => Number(new URL(url ?? '/', 'http://x').searchParams.get('t'));

interface Running {
  readonly origin: string;
  close(): Promise<void>;
}

async function listen(server: http.Server | http2.Http2Server): Promise<Running> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.close();
      (server as http.Server).closeAllConnections?.();
      for (const s of sessions) s.destroy();
    },
  };
}

/** The usual way on plain node:http and node:http2: answer when done; `res` 'close' before the end means the client left. */
function plainHandler(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
  const t = trialOf(req.url);
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) {
      trials.abort(t);
      controller.abort();
    }
  });
  trials.start(t);
  void job(controller.signal).then(() => {
    if (!controller.signal.aborted) res.end('{"done":true}');
  });
}

async function startSystem(system: SystemName, protocol: Protocol): Promise<Running> {
  switch (system) {
    case 'heartwire-http': {
      const hw = createServer();
      hw.handle('job', async (params: { t: number }, ctx: CallContext) => {
        const t = params.t;
        trials.start(t);
        ctx.signal.addEventListener('abort', () => trials.abort(t));
        await job(ctx.signal);
        return { done: true };
      });
      const bridge = createHttpBridge(hw, { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS });
      // The trial number comes from the query, as for the others.
      const listener = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
        const t = trialOf(req.url);
        bridge.serve('job', req, res, { params: { t } });
      };
      const running = await listen(protocol === 'h1' ? http.createServer(listener) : http2.createServer(listener));
      return {
        origin: running.origin,
        async close() {
          bridge.close();
          await running.close();
          await new Promise<void>((resolve) => hw.close(() => resolve()));
        },
      };
    }
    case 'node-http':
      return listen(protocol === 'h1' ? http.createServer(plainHandler) : http2.createServer(plainHandler));
    case 'express': {
      const app = express();
      app.get('/job', plainHandler);
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return {
        origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        async close() {
          server.close();
          server.closeAllConnections();
        },
      };
    }
    case 'fastify': {
      // One type for both: the routes below use only what HTTP/1.1 and HTTP/2 requests share.
      const app = (protocol === 'h1' ? Fastify() : Fastify({ http2: true })) as unknown as FastifyInstance;
      app.addHook('onRequest', async (request) => {
        request.raw.on('close', () => {
          if ((request.raw as http.IncomingMessage).aborted) trials.abort(trialOf(request.raw.url));
        });
      });
      app.get('/job', async (request) => {
        const t = trialOf(request.raw.url);
        const controller = new AbortController();
        request.raw.on('close', () => {
          if ((request.raw as http.IncomingMessage).aborted) controller.abort();
        });
        trials.start(t);
        await job(controller.signal);
        return { done: true };
      });
      const origin = await app.listen({ port: 0, host: '127.0.0.1' });
      return { origin, close: () => app.close() };
    }
  }
}

function startCurl(protocol: Protocol, url: string): ChildProcess {
  const args = ['--silent', '--no-buffer', '--output', '/dev/null', '--max-time', String(Math.ceil(JOB_MS / 1000)), url];
  if (protocol === 'h2') args.unshift('--http2-prior-knowledge');
  const child = spawn('curl', args, { stdio: 'ignore' });
  child.on('error', () => {});
  return child;
}

interface Outcome {
  readonly ms: number | undefined;
  readonly falseVerdict: boolean;
}

/** One trial of `kase`: start a call, wait for its job, make the client go, time the verdict. */
async function trial(system: SystemName, protocol: Protocol, kase: CaseName, origin: string): Promise<Outcome> {
  const t = nextTrial++;
  const url = `${origin}/job?t=${t}`;
  let faultAt = 0;
  let cleanup: () => void = () => {};
  if (kase === 'hangup' && protocol === 'h1') {
    const req = http.get(url);
    req.on('error', () => {});
    await trials.whenStarted(t);
    faultAt = performance.now();
    req.destroy();
  } else if (kase === 'hangup') {
    const session = http2.connect(origin);
    session.on('error', () => {});
    const stream = session.request({ ':path': `/job?t=${t}` });
    stream.on('error', () => {});
    await trials.whenStarted(t);
    faultAt = performance.now();
    stream.close(http2.constants.NGHTTP2_CANCEL);
    cleanup = () => session.destroy();
  } else {
    const curl = startCurl(protocol, url);
    await trials.whenStarted(t);
    if (kase === 'frozen') await sleep(50);
    faultAt = performance.now();
    curl.kill(kase === 'kill' ? 'SIGKILL' : 'SIGSTOP');
    cleanup = () => {
      curl.kill('SIGKILL');
    };
  }
  const abortedAt = await trials.whenAborted(t, kase === 'frozen' ? CAP_MS : INSTANT_CAP_MS);
  cleanup();
  if (abortedAt === undefined) return { ms: undefined, falseVerdict: false };
  return { ms: abortedAt - faultAt, falseVerdict: abortedAt < faultAt };
}

interface Row {
  readonly system: SystemName;
  readonly protocol: Protocol;
  readonly case: CaseName;
  readonly trials: number;
  readonly detected: number;
  readonly false_verdicts: number;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly max_ms: number | null;
}

async function measure(system: SystemName, protocol: Protocol, kase: CaseName): Promise<Row> {
  const running = await startSystem(system, protocol);
  const outcomes: Outcome[] = [];
  try {
    if (kase === 'frozen') {
      outcomes.push(...(await Promise.all(Array.from({ length: FROZEN_TRIALS }, () => trial(system, protocol, kase, running.origin)))));
    } else {
      for (let i = 0; i < TRIALS; i++) {
        outcomes.push(await trial(system, protocol, kase, running.origin));
        // A system that sees none of the first 10 will not see the next 190 either: spare the caps.
        if (i === 9 && outcomes.every((o) => o.ms === undefined)) break;
      }
    }
  } finally {
    await running.close();
  }
  const times = outcomes.filter((o) => o.ms !== undefined && !o.falseVerdict).map((o) => o.ms!);
  const s = summarize(times);
  const fig = (v: number): number | null => (Number.isFinite(v) ? round(v, 1) : null);
  return {
    system,
    protocol,
    case: kase,
    trials: outcomes.length,
    detected: times.length,
    false_verdicts: outcomes.filter((o) => o.falseVerdict).length,
    p50_ms: fig(s.p50),
    p99_ms: fig(s.p99),
    max_ms: fig(s.max),
  };
}

interface RateRow {
  readonly system: 'heartwire-http' | 'node-http';
  readonly protocol: 'h1';
  readonly case: 'rate';
  readonly connections: number;
  readonly runs: readonly number[];
  readonly calls_per_s: number;
}

const LOAD = fileURLToPath(new URL('./http-load.mjs', import.meta.url));
const run = promisify(execFile);

async function rate(): Promise<RateRow[]> {
  const hw = createServer();
  hw.handle('short', () => ({ ok: 1 }));
  const bridge = createHttpBridge(hw, { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS });
  const heartwire = await listen(http.createServer(bridge.listener('short')));
  // The same result, the usual way: one JSON body.
  const plain = await listen(
    http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'result', data: { ok: 1 } }));
    }),
  );
  const runs: Record<RateRow['system'], number[]> = { 'heartwire-http': [], 'node-http': [] };
  try {
    for (let rep = 0; rep < RATE_REPS; rep++) {
      // Turns within each repetition, so a noisy neighbour hits both.
      for (const [system, origin] of [['heartwire-http', heartwire.origin], ['node-http', plain.origin]] as const) {
        const args = { url: `${origin}/short`, connections: RATE_CONNECTIONS, durationMs: RATE_DURATION_MS, warmupMs: 1000, expect: '"result"' };
        const { stdout } = await run(process.execPath, [LOAD, JSON.stringify(args)], { timeout: RATE_DURATION_MS + 30_000 });
        const { calls, ms, failed } = JSON.parse(stdout) as { calls: number; ms: number; failed: number };
        if (failed > 0) throw new Error(`${system}: ${failed} calls failed`);
        runs[system].push(Math.round((calls / ms) * 1000));
      }
    }
  } finally {
    bridge.close();
    await heartwire.close();
    await plain.close();
    await new Promise<void>((resolve) => hw.close(() => resolve()));
  }
  return (['heartwire-http', 'node-http'] as const).map((system) => ({
    system,
    protocol: 'h1',
    case: 'rate',
    connections: RATE_CONNECTIONS,
    runs: runs[system],
    calls_per_s: median(runs[system]),
  }));
}

const rows: Row[] = [];
for (const kase of RUN_CASES) {
  if (kase === 'rate') continue;
  for (const system of RUN_SYSTEMS) {
    for (const protocol of PROTOCOLS[system]) {
      if (!RUN_PROTOCOLS.includes(protocol) || (kase === 'frozen' && protocol !== 'h2')) continue;
      const row = await measure(system, protocol, kase);
      rows.push(row);
      console.error(`${system} ${protocol} ${kase}: p50 ${row.p50_ms} p99 ${row.p99_ms} (${row.detected}/${row.trials} detected)`);
    }
  }
}
// The rate is measured over HTTP/1.1 only.
const rateRows = RUN_CASES.includes('rate') && RUN_PROTOCOLS.includes('h1') ? await rate() : [];

const cell = (r: Row, v: number | null): string | number =>
  r.detected === 0 ? `not within ${r.case === 'frozen' ? CAP_MS : INSTANT_CAP_MS}` : v ?? '–';
console.log(
  table(
    ['system', 'protocol', 'case', 'trials', 'detected', 'p50 ms', 'p99 ms', 'max ms'],
    rows.map((r) => [r.system, r.protocol, r.case, r.trials, r.detected, cell(r, r.p50_ms), cell(r, r.p99_ms), cell(r, r.max_ms)]),
  ),
);
const plainRate = rateRows.find((r) => r.system === 'node-http');
const hwRate = rateRows.find((r) => r.system === 'heartwire-http');
if (plainRate !== undefined && hwRate !== undefined) {
  console.log();
  console.log(
    table(
      ['system', 'calls/s (median)', 'runs', 'vs node-http'],
      rateRows.map((r) => [r.system, r.calls_per_s, r.runs.join(', '), round(r.calls_per_s / plainRate.calls_per_s, 2)]),
    ),
  );
}
if (WHOLE_RUN && plainRate !== undefined && hwRate !== undefined) {
  const file = writeResults('http', {
    ...header(),
    heartbeat_ms: HEARTBEAT_MS,
    silent_ms: SILENT_MS,
    cap_ms: CAP_MS,
    instant_cap_ms: INSTANT_CAP_MS,
    rows: [...rows, ...rateRows],
    rate_ratio: round(hwRate.calls_per_s / plainRate.calls_per_s, 3),
  });
  console.log(`\nwrote ${file}`);
} else {
  console.log('\na narrowed run (SYSTEMS, PROTOCOLS or CASES): no results file written');
}

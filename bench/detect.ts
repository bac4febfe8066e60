/**
 * `pnpm bench:detect`: how long a server takes to stop a job once its client
 * is gone, from the moment the peer goes to the moment the handler's signal
 * aborts (grpc-js: the call's 'cancelled' event; bare net: the socket's first
 * 'end', 'close' or 'error').
 *
 * Systems, in the same run: heartwire; @grpc/grpc-js with its keepalive time
 * and timeout set to heartwire's heartbeat interval and silent bound; and the
 * limit, a bare `net` server that does nothing but wait for 'end', 'close' or
 * 'error'. Cases: cancel, fin (the client closes its connection), sigkill, sigstop,
 * blackhole (the client in its own network namespace, the link cut), stalled
 * (a proxy between them stops reading what the server writes).
 *
 * Every trial is a new client process (bench/detect-client.mjs). The fault
 * time comes from the process that caused it (the client for cancel and fin,
 * mapped onto our clock by an echo, this process otherwise), the abort time
 * from the server, which runs here.
 *
 * Env: TRIALS (20), INSTANT_TRIALS (100: cancel, fin and sigkill take
 * milliseconds, and with 100 trials their p99 is a percentile, not the
 * slowest trial), HEARTBEAT_MS (250), SILENT_MS (1000), CAP_MS (5000: a
 * trial not detected by then counts as never), SYSTEMS and CASES
 * (comma-separated subsets).
 */
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { createServer, type CallContext } from '@heartwire/server';
import { ChildClient } from '../test/harness/child.js';
import { FaultProxy } from '../test/harness/fault-proxy.js';
import { createNetns, netnsUnavailable, type Netns } from '../test/harness/netns.js';
import { Waiter } from '../test/harness/waiter.js';
import { benchService, keepaliveOptions } from './lib/grpc.js';
import { intEnv, listEnv } from './lib/env.js';
import { header, table, writeResults } from './lib/report.js';
import { percentile, round } from './lib/stats.js';

const SYSTEMS = ['heartwire', 'grpc-js', 'bare-net'] as const;
const CASES = ['cancel', 'fin', 'sigkill', 'sigstop', 'blackhole', 'stalled'] as const;
type SystemName = (typeof SYSTEMS)[number];
type CaseName = (typeof CASES)[number];

const TRIALS = intEnv('TRIALS', 20);
const INSTANT_TRIALS = intEnv('INSTANT_TRIALS', 100);
/** Cases whose verdict takes milliseconds: cheap enough to run more trials of. */
const INSTANT_CASES: readonly CaseName[] = ['cancel', 'fin', 'sigkill'];
const HEARTBEAT_MS = intEnv('HEARTBEAT_MS', 250);
const SILENT_MS = intEnv('SILENT_MS', 1000);
const CAP_MS = intEnv('CAP_MS', 5000);
const RUN_SYSTEMS = listEnv('SYSTEMS', SYSTEMS);
const RUN_CASES = listEnv('CASES', CASES);

const epochNow = (): number => performance.timeOrigin + performance.now();
const CLIENT = fileURLToPath(new URL('./detect-client.mjs', import.meta.url));

/** heartwire abort codes that say the client is gone (any of them is true after a kill, freeze, cut or stall). */
const GONE_CODES = new Set(['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET', 'HW_ERR_WRITE_FAILED', 'HW_ERR_PEER_SILENT', 'HW_ERR_PEER_STALLED']);

// ---- what the servers report ------------------------------------------------------

interface JobRecord {
  startedAt?: number;
  abortedAt?: number;
  /** heartwire's abort reason code. */
  code?: string;
}

/** Job starts and aborts, by the tag each client sends with its job. */
class JobLog {
  private readonly records = new Map<string, JobRecord>();
  private readonly waiter = new Waiter();

  started(tag: string): void {
    this.get(tag).startedAt = epochNow();
    this.waiter.wake();
  }

  aborted(tag: string, code?: string): void {
    const record = this.get(tag);
    if (record.abortedAt !== undefined) return;
    record.abortedAt = epochNow();
    if (code !== undefined) record.code = code;
    this.waiter.wake();
  }

  get(tag: string): JobRecord {
    let record = this.records.get(tag);
    if (record === undefined) {
      record = {};
      this.records.set(tag, record);
    }
    return record;
  }

  waitStarted(tag: string): Promise<JobRecord> {
    return this.waiter.until(() => (this.get(tag).startedAt === undefined ? undefined : this.get(tag)), `start of ${tag}`, 20_000);
  }

  /** The record once aborted, or undefined if it was not by `deadline` (epoch ms). */
  async waitAborted(tag: string, deadline: number): Promise<JobRecord | undefined> {
    const record = this.get(tag);
    return this.waiter
      .until(() => (record.abortedAt === undefined ? undefined : record), `abort of ${tag}`, Math.max(0, deadline - epochNow()))
      .catch(() => undefined);
  }
}

interface Job {
  readonly tag: string;
  /** Write as fast as the connection takes it (the stalled case). */
  readonly flood: boolean;
}

interface BenchServer {
  readonly port: number;
  close(): Promise<void>;
}

const FLOOD_CHUNK = 64 * 1024;

// ---- the three servers ---------------------------------------------------------------

/** Writes chunks to `out` for as long as it takes them, and again at each 'drain', until `stopped()`. */
function flood(out: Writable, stopped: () => boolean): void {
  const chunk = Buffer.alloc(FLOOD_CHUNK);
  const write = (): void => {
    while (!stopped() && out.write(chunk));
    if (!stopped()) out.once('drain', write);
  };
  write();
}

async function heartwireServer(host: string, log: JobLog): Promise<BenchServer> {
  const server = createServer({ heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS });
  server.handle('job', async (job: Job, ctx: CallContext) => {
    log.started(job.tag);
    ctx.signal.addEventListener('abort', () => log.aborted(job.tag, (ctx.signal.reason as { code?: string }).code), { once: true });
    const chunk = new Uint8Array(FLOOD_CHUNK);
    while (!ctx.signal.aborted) {
      // Flooding: as fast as the socket takes it, then one chunk per 5 ms to bound memory.
      if (job.flood) await (ctx.progress(chunk) ? sleep(0) : sleep(5));
      else await once(ctx.signal, 'abort');
    }
    throw ctx.signal.reason;
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function grpcServer(host: string, log: JobLog): Promise<BenchServer> {
  const server = new grpc.Server(keepaliveOptions(HEARTBEAT_MS, SILENT_MS));
  server.addService(benchService, {
    call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
    job: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const job = JSON.parse(call.request.toString()) as Job;
      log.started(job.tag);
      call.once('cancelled', () => log.aborted(job.tag));
      if (job.flood) flood(call, () => call.cancelled);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    port,
    close: async () => {
      server.forceShutdown();
    },
  };
}

/** The limit: a socket that only waits for 'end', 'close' or 'error'. */
async function bareServer(host: string, log: JobLog): Promise<BenchServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let tag: string | undefined;
    let head = '';
    const gone = (): void => {
      if (tag !== undefined) log.aborted(tag);
    };
    socket.on('end', gone);
    socket.on('close', () => {
      sockets.delete(socket);
      gone();
    });
    socket.on('error', gone);
    socket.on('data', (chunk: Buffer) => {
      if (tag !== undefined) return;
      head += chunk.toString();
      const newline = head.indexOf('\n');
      if (newline < 0) return;
      const job = JSON.parse(head.slice(0, newline)) as Job;
      tag = job.tag;
      log.started(tag);
      if (job.flood) flood(socket, () => socket.destroyed);
    });
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const SERVERS: Record<SystemName, (host: string, log: JobLog) => Promise<BenchServer>> = {
  heartwire: heartwireServer,
  'grpc-js': grpcServer,
  'bare-net': bareServer,
};

// ---- trials ----------------------------------------------------------------------------

interface Outcome {
  /** Abort time minus fault time; Infinity when not detected within CAP_MS. */
  readonly latencyMs: number;
  /** Aborted before the fault, or (heartwire) with a reason that is not true of this fault. */
  readonly falseVerdict: boolean;
  readonly code?: string;
  /** Arrival minus child's fault time, for the cases timed by the child: never negative if the clocks agree. */
  readonly clockGapMs?: number;
}

/** Everything one (system, case) run shares. */
interface Run {
  readonly system: SystemName;
  readonly kase: CaseName;
  readonly server: BenchServer;
  readonly log: JobLog;
  readonly host: string;
  readonly netns: Netns | undefined;
}

/** A client process for one trial, and the proxy it goes through in the stalled case. */
interface TrialClient {
  readonly child: ChildClient;
  readonly proxy: FaultProxy | undefined;
}

async function spawnClient(run: Run, direct = false): Promise<TrialClient> {
  const proxy = run.kase === 'stalled' && !direct ? await FaultProxy.start({ host: run.host, port: run.server.port }) : undefined;
  const options = {
    system: run.system,
    host: proxy === undefined ? run.host : '127.0.0.1',
    channelOptions: keepaliveOptions(HEARTBEAT_MS, SILENT_MS),
    jobPath: benchService.job.path,
  };
  const wrap = run.kase === 'blackhole' && !direct ? run.netns?.exec : undefined;
  const child = new ChildClient(proxy?.port ?? run.server.port, options, wrap === undefined ? { fixture: CLIENT } : { fixture: CLIENT, wrap });
  return { child, proxy };
}

async function disposeClient(client: TrialClient): Promise<void> {
  await client.child.dispose();
  await client.proxy?.close();
}

let tagCount = 0;

/** A trial whose job runs: the client, its job's tag, and (once inflicted) the fault's time. */
interface Trial {
  readonly client: TrialClient;
  readonly tag: string;
  /** The client's clock minus ours, in ms. */
  readonly offsetMs: number;
  faultAt?: number;
  clockGapMs?: number;
}

/**
 * The child's epoch clock minus ours, from the echo with the shortest round
 * trip of five (error at most half that, ~0.05 ms here). Usually ~0, but
 * `performance.timeOrigin + performance.now()` alone disagreed by 7 ms
 * between two processes in one run on the loaded machine: too much for a
 * 1 ms detection.
 */
async function clockOffset(child: ChildClient): Promise<number> {
  let best = { rtt: Infinity, offset: 0 };
  for (let n = 0; n < 5; n++) {
    const sent = epochNow();
    child.send({ cmd: 'clock', n });
    const echo = await child.waitFor('clock', (e) => e.n === n);
    const received = performance.timeOrigin + echo.receivedAt;
    if (received - sent < best.rtt) best = { rtt: received - sent, offset: (echo.t as number) - (sent + received) / 2 };
  }
  return best.offset;
}

/** Starts the client's job and resolves once the server runs it. */
async function prepare(run: Run, client: TrialClient): Promise<Trial> {
  const tag = `${run.system}/${run.kase}/${tagCount++}`;
  await client.child.waitFor('ready');
  const offsetMs = run.kase === 'cancel' || run.kase === 'fin' ? await clockOffset(client.child) : 0;
  client.child.send({ cmd: 'start', job: { tag, flood: run.kase === 'stalled' } });
  await run.log.waitStarted(tag);
  return { client, tag, offsetMs };
}

/** Makes the peer go, and records when (epoch ms, from the clock of the process that did it). */
async function inflict(run: Run, trial: Trial): Promise<void> {
  const { child, proxy } = trial.client;
  switch (run.kase) {
    case 'cancel':
    case 'fin': {
      child.send({ cmd: run.kase === 'cancel' ? 'cancel' : 'close' });
      const fault = await child.waitFor('fault');
      trial.faultAt = (fault.t as number) - trial.offsetMs;
      trial.clockGapMs = performance.timeOrigin + fault.receivedAt - trial.faultAt;
      return;
    }
    case 'sigkill':
    case 'sigstop':
      trial.faultAt = epochNow();
      child.process.kill(run.kase === 'sigkill' ? 'SIGKILL' : 'SIGSTOP');
      return;
    case 'blackhole':
      // Timed when `ip` returns: the link is down by then, and went down only just before.
      await (run.netns as Netns).cut();
      trial.faultAt = epochNow();
      return;
    case 'stalled':
      trial.faultAt = epochNow();
      (await (proxy as FaultProxy).link()).freeze('toClient');
      return;
  }
}

/** Waits up to CAP_MS after the fault for the job's abort. */
async function judge(run: Run, trial: Trial): Promise<Outcome> {
  const faultAt = trial.faultAt as number;
  const clock = trial.clockGapMs === undefined ? {} : { clockGapMs: trial.clockGapMs };
  const record = await run.log.waitAborted(trial.tag, faultAt + CAP_MS);
  if (record?.abortedAt === undefined) return { latencyMs: Infinity, falseVerdict: false, ...clock };
  const latencyMs = record.abortedAt - faultAt;
  const { code } = record;
  const wrongCode = code !== undefined && (run.kase === 'cancel' ? code !== 'HW_ERR_CANCELLED' : !GONE_CODES.has(code));
  return { latencyMs, falseVerdict: latencyMs < 0 || wrongCode, ...(code === undefined ? {} : { code }), ...clock };
}

/**
 * One trial: the job runs, the fault falls at a random moment of the
 * heartbeat cycle, the abort is timed. `afterFault` runs while the verdict is
 * awaited.
 */
async function single(run: Run, client: TrialClient, afterFault: () => void): Promise<Outcome> {
  try {
    const trial = await prepare(run, client);
    await sleep(Math.random() * HEARTBEAT_MS);
    await inflict(run, trial);
    afterFault();
    return await judge(run, trial);
  } finally {
    await disposeClient(client);
    if (run.kase === 'blackhole') await run.netns?.restore();
  }
}

/** Trials side by side: all jobs run, then all faults (one cut of the shared link), then one wait for them all. */
async function batch(run: Run, clients: TrialClient[]): Promise<Outcome[]> {
  try {
    const trials = await Promise.all(clients.map((client) => prepare(run, client)));
    await sleep(Math.random() * HEARTBEAT_MS);
    if (run.kase === 'blackhole') {
      await inflict(run, trials[0] as Trial);
      for (const trial of trials) trial.faultAt = trials[0]?.faultAt as number;
    } else {
      for (const trial of trials) await inflict(run, trial);
    }
    return await Promise.all(trials.map((trial) => judge(run, trial)));
  } finally {
    await Promise.all(clients.map(disposeClient));
    if (run.kase === 'blackhole') await run.netns?.restore();
  }
}

interface Row {
  readonly system: SystemName;
  readonly case: CaseName;
  readonly trials: number;
  readonly p50_ms: number | null;
  readonly p99_ms: number | null;
  readonly max_ms: number | null;
  readonly false_verdicts: number;
}

/** A finite figure in ms, or null for "not detected within CAP_MS". */
function ms(value: number): number | null {
  return Number.isFinite(value) ? round(value, 1) : null;
}

async function runCase(system: SystemName, kase: CaseName, netns: Netns | undefined): Promise<{ row: Row; outcomes: Outcome[] }> {
  const log = new JobLog();
  const host = kase === 'blackhole' ? (netns as Netns).hostAddress : '127.0.0.1';
  const run: Run = { system, kase, server: await SERVERS[system](host, log), log, host, netns };
  // A healthy client with a job of its own through the whole run: any abort of it is a false verdict.
  const control = await spawnClient(run, true);
  const controlTag = `${system}/${kase}/control`;
  await control.child.waitFor('ready');
  control.child.send({ cmd: 'start', job: { tag: controlTag, flood: false } });
  await log.waitStarted(controlTag);

  const trials = INSTANT_CASES.includes(kase) ? INSTANT_TRIALS : TRIALS;
  const outcomes: Outcome[] = [];
  // Where the verdict takes about a second, the next client starts (~0.2 s of CPU) while it is
  // awaited, not before the fault. Not behind a cut link (it could not connect), and not where
  // the verdict takes a millisecond: a process starting up beside it would be timed with it.
  const prespawn = kase === 'sigstop' || kase === 'stalled';
  let next: Promise<TrialClient> | undefined;
  const take = (): Promise<TrialClient> => {
    const client = next ?? spawnClient(run);
    next = undefined;
    return client;
  };
  while (outcomes.length < trials) {
    const client = await take();
    const outcome = await single(run, client, () => {
      if (prespawn && outcomes.length + 1 < trials) next = spawnClient(run);
    });
    outcomes.push(outcome);
    if (outcomes.length === 1 && outcome.latencyMs === Infinity && trials > 1) {
      // Not detected within the cap: the rest of this case's trials run side by side, so that a
      // system that cannot see this fault costs one more cap, not trials - 1 of them.
      const clients = await Promise.all(Array.from({ length: trials - 1 }, (_, i) => (i === 0 ? take() : spawnClient(run))));
      outcomes.push(...(await batch(run, clients)));
    }
  }
  await next?.then(disposeClient);

  const controlRecord = log.get(controlTag);
  const controlFalse = controlRecord.abortedAt === undefined ? 0 : 1;
  await disposeClient(control);
  await run.server.close();

  const latencies = outcomes.map((o) => o.latencyMs);
  return {
    row: {
      system,
      case: kase,
      trials: outcomes.length,
      p50_ms: ms(percentile(latencies, 50)),
      p99_ms: ms(percentile(latencies, 99)),
      max_ms: ms(Math.max(...latencies)),
      false_verdicts: outcomes.filter((o) => o.falseVerdict).length + controlFalse,
    },
    outcomes,
  };
}

// ---- main ------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const noNetns = RUN_CASES.includes('blackhole') ? await netnsUnavailable() : undefined;
  if (noNetns !== undefined) console.log(`blackhole skipped: ${noNetns}`);
  const netns = RUN_CASES.includes('blackhole') && noNetns === undefined ? await createNetns() : undefined;
  const cases = RUN_CASES.filter((c) => c !== 'blackhole' || netns !== undefined);
  const rows: Row[] = [];
  const notes: string[] = [];
  let minClockGap = Infinity;
  console.log(
    `bench:detect — ${INSTANT_TRIALS} trials per case for ${INSTANT_CASES.join(', ')}, ${TRIALS} for the others; heartbeat ${HEARTBEAT_MS} ms, silent bound ${SILENT_MS} ms ` +
      `(grpc-js keepalive time/timeout the same); not detected within ${CAP_MS} ms counts as never`,
  );
  try {
    for (const kase of cases) {
      for (const system of RUN_SYSTEMS) {
        const t = performance.now();
        const { row, outcomes } = await runCase(system, kase, netns);
        rows.push(row);
        for (const o of outcomes) if (o.clockGapMs !== undefined) minClockGap = Math.min(minClockGap, o.clockGapMs);
        const codes = new Map<string, number>();
        for (const o of outcomes) if (o.code !== undefined) codes.set(o.code, (codes.get(o.code) ?? 0) + 1);
        const codeText = [...codes].map(([code, n]) => `${n}× ${code}`).join(', ');
        if (codeText) notes.push(`${system} ${kase}: ${codeText}`);
        const detected = outcomes.filter((o) => Number.isFinite(o.latencyMs)).length;
        console.log(
          `  ${system.padEnd(9)} ${kase.padEnd(9)} p50 ${fmt(row.p50_ms)} p99 ${fmt(row.p99_ms)} max ${fmt(row.max_ms)} ` +
            `detected ${detected}/${row.trials} false ${row.false_verdicts}  (${((performance.now() - t) / 1000).toFixed(1)} s)`,
        );
      }
    }
  } finally {
    await netns?.remove();
  }

  const columns = ['system', 'case', 'trials', 'p50 ms', 'p99 ms', 'max ms', 'false verdicts'];
  const cells = rows.map((r) => [r.system, r.case, r.trials, fmt(r.p50_ms), fmt(r.p99_ms), fmt(r.max_ms), r.false_verdicts]);
  console.log(`\n${table(columns, cells)}\n`);
  console.log(`"never": not detected within the ${CAP_MS} ms cap.`);
  if (notes.length > 0) console.log(`heartwire abort reasons: ${notes.join('; ')}`);
  if (Number.isFinite(minClockGap)) {
    console.log(`clock check: a client's fault line reached us at least ${minClockGap.toFixed(2)} ms after its fault (≥ 0: the clock mapping holds)`);
  }
  const file = writeResults('detect', {
    ...header(),
    heartbeat_ms: HEARTBEAT_MS,
    silent_ms: SILENT_MS,
    cap_ms: CAP_MS,
    rows,
  });
  console.log(`wrote ${file} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

function fmt(value: number | null): string {
  return value === null ? 'never' : value.toFixed(1);
}

await main();

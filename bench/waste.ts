/**
 * pnpm bench:waste — the CPU a job keeps burning after its client is gone.
 *
 * Seven servers, each in its own process, run the same 1 s job (a loop, or one
 * synchronous pbkdf2Sync call for `native-sync`); a client in its own process
 * starts it, and 100 ms into the job the client is killed (SIGKILL), frozen
 * (SIGSTOP) or cancels through its API. The `-coop` systems run the loop in a
 * worker thread or child process checking `ctx.throwIfAborted()` on every
 * turn; the others never check. From the moment the client goes, the bench
 * reads CPU time from the kernel's own accounting (see waste/cpu-time.ts)
 * every 2 ms until it has stopped rising for 100 ms, twice over:
 *
 * - the thread running the job: what the job itself burned after its client
 *   was gone (p50_ms, p99_ms, max_ms);
 * - the whole server, every thread and child process it has or starts
 *   meanwhile: that, plus what stopping costs elsewhere, such as a
 *   replacement thread's or process's start-up (whole_p50_ms, whole_p99_ms).
 *
 * `kept` counts the trials whose job thread (or process) was still alive
 * afterwards: a cooperative stop keeps it, a forced one does not. For the
 * heartwire rows, verdict_* is the wall time from the kill (or cancel) to the
 * server's verdict (it prints its clock then): detection, as against stopping.
 * The first reading of the job's thread waits for its tick (see
 * waste/cpu-time.ts): otherwise every figure would grow by up to 4 ms.
 *
 * Each case starts with one trial that is not counted: it warms the stop
 * path (JIT, lazily created pools) as users' servers are warm.
 *
 * Env: TRIALS (default 20 per row), JOB_MS (1000), SYSTEMS and CASES (comma
 * lists, to run part of the table). A run narrowed by SYSTEMS or CASES prints
 * its table but writes no results file: bench/results/waste.json always holds
 * a whole run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pbkdf2Sync } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { benchService, keepaliveOptions } from './lib/grpc.js';
import { intEnv, listEnv } from './lib/env.js';
import { header, table, writeResults } from './lib/report.js';
import { round, summarize } from './lib/stats.js';
import type { WasteJob, WasteSystem } from './waste/server.js';
import { CpuTime } from './waste/cpu-time.js';

type WasteCase = 'sigkill' | 'sigstop' | 'cancel' | 'native-sync';

const TRIALS = intEnv('TRIALS', 20);
const JOB_MS = intEnv('JOB_MS', 1000);
/** heartwire's heartbeat interval and silent bound, and grpc-js keepalive's time and timeout. */
const HEARTBEAT_MS = 100;
const SILENT_MS = 300;
/** How far into the job the client goes away: the job is well inside its loop by then. */
const GONE_AFTER_MS = 100;
const POLL_MS = 2;
/** The job has stopped once its threads have not run BUSY_SHARE of a core between two readings for QUIET_MS. */
const QUIET_MS = 100;
const BUSY_SHARE = 0.25;

const ALL_CASES: readonly WasteCase[] = ['sigkill', 'sigstop', 'cancel', 'native-sync'];
/** A job inside one native call checks nothing: native-sync is the same with or without checks. */
const LOOP_CASES: readonly WasteCase[] = ['sigkill', 'sigstop', 'cancel'];
const ROWS: ReadonlyArray<readonly [WasteSystem, readonly WasteCase[]]> = [
  ['heartwire-worker', ALL_CASES],
  ['heartwire-worker-coop', LOOP_CASES],
  ['heartwire-process', ALL_CASES],
  ['heartwire-process-coop', LOOP_CASES],
  ['heartwire-main', ALL_CASES],
  // A bare socket protocol has no cancel of its own: the client can only hang up (sigkill).
  ['naive-net', ['sigkill', 'sigstop', 'native-sync']],
  ['grpc-js', ALL_CASES],
];

/** A process speaking JSON lines on stdout; resolves each awaited event once it is printed. */
class Peer {
  readonly process: ChildProcess;
  private readonly seen: Array<Record<string, unknown>> = [];
  private readonly waiters: Array<() => void> = [];

  constructor(args: string[]) {
    this.process = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      this.seen.push(JSON.parse(line) as Record<string, unknown>);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** How many lines were printed so far: `next(…, from)` looks only at those printed after. */
  get printed(): number {
    return this.seen.length;
  }

  async next(match: (line: Record<string, unknown>) => boolean, what: string, timeoutMs = 20_000, from = 0): Promise<Record<string, unknown>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.seen.find((line, i) => i >= from && match(line));
      if (hit !== undefined) return hit;
      if (this.process.exitCode !== null) throw new Error(`${what}: the process exited`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), sleep(Math.min(left, 500))]);
    }
  }

  send(line: string): void {
    this.process.stdin!.write(`${line}\n`);
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = once(this.process, 'exit');
    this.process.kill('SIGKILL');
    await exited;
  }
}

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

async function startServer(system: WasteSystem): Promise<{ peer: Peer; port: number }> {
  // Not `--import tsx`: the server's threads and processes would inherit it (see waste/launch.mjs).
  const peer = new Peer([here('./waste/launch.mjs'), JSON.stringify({ system, heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS })]);
  const { port } = await peer.next((l) => typeof l.port === 'number', `${system} listening`);
  return { peer, port: port as number };
}

/**
 * CPU each reader's threads spend from `start` (their readings then) until
 * they stop: up to the end of the last interval between two readings in
 * which they ran at least BUSY_SHARE of a core, once QUIET_MS have passed
 * without such an interval.
 */
async function untilQuiet(readers: readonly CpuTime[], start: readonly number[], boundMs: number): Promise<number[]> {
  const deadline = performance.now() + boundMs;
  const began = performance.now();
  const last = start.map((cpu) => ({ at: began, cpu }));
  const busyUntil = start.map((cpu) => ({ at: began, cpu }));
  const waste: Array<number | undefined> = readers.map(() => undefined);
  while (performance.now() < deadline) {
    await sleep(POLL_MS);
    const at = performance.now();
    readers.forEach((reader, i) => {
      if (waste[i] !== undefined) return;
      const cpu = reader.read();
      if (cpu - last[i]!.cpu >= BUSY_SHARE * (at - last[i]!.at)) busyUntil[i] = { at, cpu };
      else if (at - busyUntil[i]!.at >= QUIET_MS) waste[i] = busyUntil[i]!.cpu - start[i]!;
      last[i] = { at, cpu };
    });
    if (waste.every((w) => w !== undefined)) return waste as number[];
  }
  throw new Error(`the server's CPU still rises ${boundMs} ms after the client went away`);
}

/** CPU burned after the client went away: by the job's thread, and by the whole server. */
interface Waste {
  readonly job: number;
  readonly server: number;
  /** The part of `job` estimated for a thread that exited between two readings (an upper bound). */
  readonly estimated: number;
  /** The job's thread (or process) was still alive once the server was quiet again. */
  readonly kept: boolean;
  /** Wall time from the kill (or cancel) to the server's verdict, in ms (heartwire only): detection, as against stopping. */
  readonly verdictMs: number | undefined;
}

async function trial(system: WasteSystem, kase: WasteCase, server: { peer: Peer; port: number }, job: WasteJob): Promise<Waste> {
  const client = new Peer([
    here('./waste/client.mjs'),
    JSON.stringify({
      system,
      port: server.port,
      job,
      grpcPath: benchService.job.path,
      grpcOptions: keepaliveOptions(HEARTBEAT_MS, SILENT_MS),
    }),
  ]);
  try {
    await client.next((l) => l.event === 'ready', `${system} client ready`);
    client.send('go');
    const { tid } = await client.next((l) => l.event === 'started', `${system} job started`);
    await sleep(GONE_AFTER_MS);
    const readers = [CpuTime.ofThread(tid as number), CpuTime.ofTree(server.peer.process.pid as number)];
    try {
      const printed = server.peer.printed;
      const start = [readers[0]!.readAfterTick(), readers[1]!.read()];
      const goneAt = process.hrtime.bigint();
      if (kase === 'cancel') client.send('cancel');
      else client.process.kill(kase === 'sigstop' ? 'SIGSTOP' : 'SIGKILL');
      const [jobWaste, serverWaste] = await untilQuiet(readers, start, JOB_MS * 3 + 5000);
      let verdictMs: number | undefined;
      // No verdict comes for a main-thread job blocked in pbkdf2Sync until its end: it reads the FIN
      // only after its result.
      if (system.startsWith('heartwire')) {
        const line = await server.peer.next((l) => typeof l.verdict === 'string', `${system} verdict`, 1000, printed).catch(() => undefined);
        if (line !== undefined) verdictMs = Number(BigInt(line.verdict as string) - goneAt) / 1e6;
      }
      return {
        job: jobWaste!,
        server: serverWaste!,
        estimated: readers[0]!.estimatedMs,
        kept: running(tid as number),
        verdictMs,
      };
    } finally {
      for (const reader of readers) reader.close();
    }
  } finally {
    await client.kill();
  }
}

/** Whether thread `tid` still exists and is not a zombie (a killed process its parent has not reaped yet). */
function running(tid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${tid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** pbkdf2Sync iterations that take about `ms` here. */
function iterationsFor(ms: number): number {
  const sample = 50_000;
  const start = performance.now();
  pbkdf2Sync('secret', 'salt', sample, 64, 'sha512');
  return Math.ceil((sample * ms) / (performance.now() - start));
}

/** The reader against this process's own `process.cpuUsage()`, over a busy 300 ms: they must agree. */
function accountingCheck(): string {
  const cpu = CpuTime.ofTree(process.pid);
  const usage = process.cpuUsage();
  const start = cpu.read();
  const until = performance.now() + 300;
  while (performance.now() < until);
  const viaProc = cpu.read() - start;
  const { user, system } = process.cpuUsage(usage);
  cpu.close();
  return `accounting check over a 300 ms busy loop: /proc ${viaProc.toFixed(1)} ms, process.cpuUsage() ${((user + system) / 1000).toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const systems = listEnv('SYSTEMS', ROWS.map(([s]) => s));
  const cases = listEnv('CASES', ALL_CASES);
  const iterations = iterationsFor(JOB_MS);
  console.log(`bench:waste — ${TRIALS} trials per row; ${JOB_MS} ms job; client gone ${GONE_AFTER_MS} ms in; heartbeat ${HEARTBEAT_MS} ms, silent ${SILENT_MS} ms`);
  console.log(`pbkdf2Sync iterations for ${JOB_MS} ms: ${iterations}`);
  console.log(accountingCheck());
  const rows: Array<{
    system: WasteSystem;
    case: WasteCase;
    trials: number;
    p50_ms: number;
    p99_ms: number;
    max_ms: number;
    whole_p50_ms: number;
    whole_p99_ms: number;
    kept: number;
    verdict_p50_ms?: number;
    verdict_p99_ms?: number;
  }> = [];
  const began = performance.now();
  for (const [system, systemCases] of ROWS) {
    if (!systems.includes(system)) continue;
    const server = await startServer(system);
    try {
      for (const kase of systemCases.filter((c) => cases.includes(c))) {
        const loop = system.endsWith('-coop') ? 'coop' : 'spin';
        const job: WasteJob = kase === 'native-sync' ? { kind: 'native', iterations } : { kind: loop, ms: JOB_MS };
        // One trial of the same case, not counted, warms what it runs (lazily created pools, and the
        // JIT on the stop path, which cost a measured first trial up to twice the others).
        await trial(system, kase, server, job);
        const samples: Waste[] = [];
        for (let i = 0; i < TRIALS; i++) samples.push(await trial(system, kase, server, job));
        const s = summarize(samples.map((w) => w.job));
        const whole = summarize(samples.map((w) => w.server));
        const kept = samples.filter((w) => w.kept).length;
        const verdict = summarize(samples.flatMap((w) => (w.verdictMs === undefined ? [] : [w.verdictMs])));
        rows.push({
          system,
          case: kase,
          trials: s.trials,
          p50_ms: round(s.p50, 1),
          p99_ms: round(s.p99, 1),
          max_ms: round(s.max, 1),
          whole_p50_ms: round(whole.p50, 1),
          whole_p99_ms: round(whole.p99, 1),
          kept,
          ...(verdict.trials > 0 ? { verdict_p50_ms: round(verdict.p50, 1), verdict_p99_ms: round(verdict.p99, 1) } : {}),
        });
        console.log(
          `  ${system} ${kase}: job thread p50 ${s.p50.toFixed(1)} / p99 ${s.p99.toFixed(1)} / max ${s.max.toFixed(1)} ms;` +
            ` whole server p50 ${whole.p50.toFixed(1)} / p99 ${whole.p99.toFixed(1)} ms; thread kept ${kept}/${s.trials};` +
            (verdict.trials > 0 ? ` verdict after p50 ${verdict.p50.toFixed(1)} / p99 ${verdict.p99.toFixed(1)} ms of wall time;` : '') +
            ` estimated for an exiting thread: at most ${Math.max(...samples.map((w) => w.estimated)).toFixed(1)} ms`,
        );
      }
    } finally {
      await server.peer.kill();
    }
  }
  const columns = ['system', 'case', 'trials', 'p50 ms', 'p99 ms', 'max ms', 'whole p50 ms', 'whole p99 ms', 'kept'];
  console.log(`\nCPU burned after the client was gone: by the job's thread, and by the whole server (stopping included):\n`);
  console.log(
    table(
      columns,
      rows.map((r) => [r.system, r.case, r.trials, r.p50_ms, r.p99_ms, r.max_ms, r.whole_p50_ms, r.whole_p99_ms, `${r.kept}/${r.trials}`]),
    ),
  );
  console.log(`\n${((performance.now() - began) / 1000).toFixed(0)} s`);
  if (systems.length === ROWS.length && cases.length === ALL_CASES.length) {
    console.log(`wrote ${writeResults('waste', { ...header(), rows })}`);
  } else {
    console.log('a narrowed run (SYSTEMS or CASES): no results file written');
  }
}

await main();

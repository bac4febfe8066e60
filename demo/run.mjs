// heartwire demo: real processes, a printed timeline, and a check.
//
//   pnpm demo        (builds the packages, then runs this file)
//
// One server process runs long CPU-heavy jobs: 'render' on its main thread,
// yielding every slice, and 'spin', a loop that never yields, in a worker
// thread. For each scene a new client process starts a job and then goes away
// (hangs up, is frozen, is killed); the server must stop the job within a
// bound. Every process reports JSON lines stamped with performance.timeOrigin +
// performance.now(), one clock for all processes on this machine, so times can
// be compared across them. The CPU a job used is its own thread's, read from
// the kernel (demo/thread-cpu.mjs).
//
// Exits non-zero when a scene does not detect its client gone within its bound
// plus SLACK_MS, or its job is still running STOP_WITHIN_MS after the abort,
// so the demo doubles as an end-to-end check.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ThreadCpuWatch } from './thread-cpu.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
/** Job lengths, in CPU time of the job's thread. */
const SHORT_JOB_MS = 800;
const LONG_JOB_MS = 12_000;
/**
 * How long each client runs its long job before it goes away: the story, not a
 * synchronisation. Kept off the 250 ms heartbeat cadence (1500 ms would be the
 * 6th PING exactly): a client killed just as a PING reaches it has its kernel
 * answer that PING with RST, so the server sees HW_ERR_PEER_RESET instead of
 * HW_ERR_PEER_CLOSED (detected as fast; see FAILURE-MODES.md, row 4).
 */
const GIVE_UP_AFTER_MS = 1600;
/** A FIN is read at once when the main thread is free, at a main-thread job's next yield otherwise; plus this margin. */
const FIN_MARGIN_MS = 30;
/** A scene fails only when detection takes longer than its bound plus this. */
const SLACK_MS = 1000;
/** A job still running this long after its abort was not stopped: its scene fails. */
const STOP_WITHIN_MS = 2000;
/**
 * How long the demo waits for a step that has no bound of its own (a process
 * starting, the short jobs finishing: their lengths are CPU time, which a busy
 * machine hands out slowly) before it gives up. Only a guard against a hang.
 */
const PATIENCE_MS = 60_000;
/** Lines from different processes are held this long so they print in time order. */
const REORDER_MS = 40;
/** Progress lines are shown for jobs at least this long. */
const SHOW_PROGRESS_FROM_MS = 5000;

const abs = () => performance.timeOrigin + performance.now();
const T0 = abs();

// ---- child processes, always cleaned up --------------------------------------

const children = new Set();
function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL'); // works on a stopped (SIGSTOP) process too
    } catch {}
  }
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`\ndemo: ${signal}, stopping every child\n`);
    process.exit(130); // runs the 'exit' handler
  });
}

class Proc {
  constructor(label, script, args) {
    this.label = label;
    this.events = [];
    this.waiters = new Set();
    this.child = spawn(process.execPath, [join(HERE, script), ...args.map(String)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    children.add(this.child);
    this.child.stdin.on('error', () => {}); // EPIPE once the child is gone
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        children.delete(this.child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    // 'close' comes after the last stdout line was read: only then is a missing line really missing.
    this.child.once('close', () => {
      for (const waiter of this.waiters) waiter.fail(new Error(`${label} (pid ${this.pid}) exited (${describeExit(this.exit)}) before ${waiter.what}`));
    });
    this.child.once('error', (err) => {
      for (const waiter of this.waiters) waiter.fail(err);
    });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    readline.createInterface({ input: this.child.stderr }).on('line', (line) => {
      process.stderr.write(`  [${label} stderr] ${line}\n`);
    });
  }

  onLine(line) {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      event = { t: abs(), who: this.label, ev: 'raw', text: line };
    }
    this.events.push(event);
    timeline.add(event);
    for (const waiter of this.waiters) if (waiter.match(event)) waiter.done(event);
  }

  /** The first event (already seen or to come) matching `match`; rejects after `timeoutMs` or if the process ends first. */
  waitFor(match, what, timeoutMs) {
    const seen = this.events.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        what,
        match,
        done: (event) => {
          cleanup();
          resolve(event);
        },
        fail: (err) => {
          cleanup();
          reject(err);
        },
      };
      const timer = setTimeout(() => waiter.fail(new Error(`no ${what} from ${this.label} within ${timeoutMs} ms`)), timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  /** Kills with `signal` and waits until the process is really gone. */
  async kill(signal = 'SIGKILL') {
    if (this.exit === undefined) this.child.kill(signal);
    return this.exited;
  }
}

function describeExit(exit) {
  if (exit === undefined) return 'unknown';
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`;
}

// ---- the timeline ------------------------------------------------------------

const fmtMs = (ms) => `${ms.toFixed(1)} ms`;
const fmtS = (ms) => `${(ms / 1000).toFixed(2)} s`;

const timeline = {
  pending: [],
  timer: undefined,
  add(event) {
    this.pending.push(event);
    this.pending.sort((a, b) => a.t - b.t);
    this.arm();
  },
  arm() {
    if (this.timer !== undefined || this.pending.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush(abs() - REORDER_MS);
    }, REORDER_MS);
  },
  /** Prints every held line stamped up to `upTo`, in time order. */
  flush(upTo = Infinity) {
    while (this.pending.length > 0 && this.pending[0].t <= upTo) {
      const event = this.pending.shift();
      const text = describe(event);
      if (text !== undefined) {
        console.log(`${`+${(event.t - T0).toFixed(1)}`.padStart(10)}  ${event.who.padEnd(6)}  ${text}`);
      }
    }
    this.arm();
  },
  note(text, t = abs()) {
    this.add({ t, who: 'demo', ev: 'note', text });
  },
};

function describe(e) {
  switch (`${e.who}:${e.ev}`) {
    case 'server:accepted':
      return `${e.method} #${e.id} from :${e.remotePort}: ACCEPTED sent, job starts`;
    case 'server:abort':
      return `ABORTED ${e.method} #${e.id}: ${e.code}, "${e.message}"`;
    case 'server:stopped':
      return `job #${e.id} stopped at its next yield, ${fmtMs(e.lagMs)} after the abort; it had used ${fmtS(e.cpuMs)} of CPU, ${fmtS(e.totalMs - e.cpuMs)} of its ${fmtS(e.totalMs)} saved`;
    case 'demo:thread-gone':
      return (
        `job #${e.id}'s thread (tid ${e.tid}) was stopped by force: gone within ${fmtMs(e.lagMs)} of the abort;` +
        ` the job had used ${fmtS(e.cpuMs)} of CPU, ${fmtS(e.totalMs - e.cpuMs)} of its ${fmtS(e.totalMs)} saved`
      );
    case 'client:connected':
      return `connected (pid ${e.pid}); server announces heartbeat ${e.heartbeatMs} ms, silent ${e.silentMs} ms`;
    case 'client:accepted':
      return `#${e.id} ${e.method} ${e.ms} ms: early header (ACCEPTED) arrived`;
    case 'client:progress':
      if (e.data.tid !== undefined) return `#${e.id} progress: the job runs on the server's thread tid ${e.data.tid}`;
      return e.ms >= SHOW_PROGRESS_FROM_MS ? `#${e.id} progress ${e.data.percent}%` : undefined;
    case 'client:result':
      return `#${e.id} result after ${fmtMs(e.elapsedMs)} (${e.progressFrames} progress frames on the way)`;
    case 'client:error':
      return `#${e.id} rejected: ${e.code}`;
    case 'client:connect-failed':
      return `cannot connect: ${e.code}, "${e.message}"`;
    case 'client:hangup':
      return `gives up and hangs up: ${e.how} (FIN)`;
    case 'server:listening':
      return undefined;
    default:
      return e.text ?? JSON.stringify(e);
  }
}

// ---- scenes ------------------------------------------------------------------

function heading(n, title) {
  timeline.flush();
  console.log(`\nScene ${n}: ${title}`);
}

function startClient(server, scene, jobs, extra = []) {
  return new Proc('client', 'client.mjs', ['--port', server.port, '--scene', scene, '--jobs', jobs.join(','), ...extra]);
}

/** Waits for the server's abort of `scene`'s main-thread job and for the job to return; returns both events. */
async function serverStops(server, scene, bound) {
  const abort = await server.waitFor((e) => e.ev === 'abort' && e.scene === scene, `abort of scene ${scene}'s job`, bound + SLACK_MS + 2000);
  const stopped = await server.waitFor((e) => e.ev === 'stopped' && e.scene === scene, `end of scene ${scene}'s job`, STOP_WITHIN_MS);
  return { abort, cpu: { usedMs: stopped.cpuMs, savedMs: stopped.totalMs - stopped.cpuMs } };
}

/** Sends `signal` to the client and notes it on the timeline; returns when. */
function goAway(client, signal) {
  const at = abs();
  process.kill(client.pid, signal);
  timeline.note(
    signal === 'SIGSTOP'
      ? `SIGSTOP client pid ${client.pid}: frozen, sends nothing, its kernel still ACKs`
      : `SIGKILL client pid ${client.pid}: its kernel closes the socket`,
    at,
  );
  return at;
}

/** After its abort, a frozen client is killed for good; a killed one is waited for. */
async function finish(client, signal) {
  if (signal === 'SIGSTOP') {
    await client.kill('SIGKILL');
    timeline.note(`SIGKILL the frozen client: it is gone (${describeExit(client.exit)})`);
  } else {
    await client.exited;
  }
}

async function sceneHangUp(server, bound) {
  heading(1, `a client runs three jobs on one connection and hangs up ${fmtS(GIVE_UP_AFTER_MS)} into the third`);
  const client = startClient(server, 1, [SHORT_JOB_MS, SHORT_JOB_MS, LONG_JOB_MS], ['--hangup-after', GIVE_UP_AFTER_MS]);
  try {
    const hangup = await client.waitFor((e) => e.ev === 'hangup', 'hang-up', PATIENCE_MS);
    for (const id of [1, 2]) {
      if (!client.events.some((e) => e.ev === 'result' && e.id === id)) throw new Error(`short job #${id} did not complete with a result`);
    }
    const { abort, cpu } = await serverStops(server, 1, bound);
    await client.exited;
    return { abort, cpu, detectMs: abort.t - hangup.t, since: 'the hang-up' };
  } finally {
    await client.kill();
  }
}

/** A main-thread 'render' job; its client goes away with `signal`. */
async function sceneSignal(server, scene, signal, bound, title) {
  heading(scene, title);
  const client = startClient(server, scene, [LONG_JOB_MS]);
  try {
    await client.waitFor((e) => e.ev === 'accepted', 'early header', PATIENCE_MS);
    await sleep(GIVE_UP_AFTER_MS); // the client works a while, then goes away
    const at = goAway(client, signal);
    const { abort, cpu } = await serverStops(server, scene, bound);
    await finish(client, signal);
    return { abort, cpu, detectMs: abort.t - at, since: signal };
  } finally {
    await client.kill();
  }
}

/**
 * A 'spin' job in a worker thread, a loop that never yields; its client goes
 * away with `signal`. The job tells its thread id first; the demo reads that
 * thread's CPU time from outside until the thread is gone, which is the only
 * way the job can stop.
 */
async function sceneWorker(server, scene, signal, bound, title) {
  heading(scene, title);
  const startedAt = abs();
  const client = startClient(server, scene, [LONG_JOB_MS], ['--method', 'spin']);
  let thread;
  try {
    const started = await client.waitFor((e) => e.ev === 'progress' && e.data.tid !== undefined, "the job's thread id", PATIENCE_MS);
    const { tid, cpuStartMs } = started.data;
    thread = new ThreadCpuWatch(server.pid, tid);
    // Scenes run one at a time: this scene's call is the first 'spin' the server accepted since it began.
    const call = await server.waitFor((e) => e.ev === 'accepted' && e.method === 'spin' && e.t >= startedAt, "the server's call", PATIENCE_MS);
    await sleep(GIVE_UP_AFTER_MS); // the client works a while, then goes away
    const at = goAway(client, signal);
    const abort = await server.waitFor(
      (e) => e.ev === 'abort' && e.remotePort === call.remotePort && e.id === call.id,
      `abort of scene ${scene}'s job`,
      bound + SLACK_MS + 2000,
    );
    const gone = await within(thread.gone, STOP_WITHIN_MS, `job #${call.id}'s thread (tid ${tid}) still runs ${STOP_WITHIN_MS} ms after the abort`);
    const usedMs = gone.cpuMs - cpuStartMs;
    timeline.add({ t: gone.t, who: 'demo', ev: 'thread-gone', id: call.id, tid, lagMs: gone.t - abort.t, cpuMs: usedMs, totalMs: LONG_JOB_MS });
    await finish(client, signal);
    return { abort, cpu: { usedMs, savedMs: LONG_JOB_MS - usedMs, estimatedMs: gone.estimatedMs }, detectMs: abort.t - at, since: signal };
  } finally {
    thread?.close();
    await client.kill();
  }
}

/** `promise`, or a rejection with `message` after `ms`. */
function within(promise, ms, message) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const MAIN = 'main thread, yields';
const WORKER = 'worker, never yields';
// The kernel of a killed process sends FIN, or RST if unread bytes were in its buffer
// or a PING reached it after it closed: both are a client gone, and seen as fast.
const KILLED = ['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET'];
const KILLED_WHY = { HW_ERR_PEER_RESET: "a PING crossed the dead client's FIN and its kernel answered with RST" };
const silentBound = (server) => server.heartbeatMs + server.silentMs;
/** A main-thread job reads a FIN at its next yield. */
const sliceBound = (server) => server.sliceMs + FIN_MARGIN_MS;
/** While a worker thread runs the job, the main thread is free and reads a FIN at once. */
const freeBound = () => FIN_MARGIN_MS;
const into = `${fmtS(GIVE_UP_AFTER_MS)} into its job`;

const SCENES = [
  {
    n: 1,
    job: MAIN,
    how: 'hung up: client.close() (FIN)',
    expect: ['HW_ERR_PEER_CLOSED'],
    bound: sliceBound,
    run: (server, bound) => sceneHangUp(server, bound),
  },
  {
    n: 2,
    job: MAIN,
    how: 'frozen: SIGSTOP',
    expect: ['HW_ERR_PEER_SILENT'],
    bound: silentBound,
    run: (server, bound) => sceneSignal(server, 2, 'SIGSTOP', bound, `a client is frozen (SIGSTOP) ${into}`),
  },
  {
    n: 3,
    job: MAIN,
    how: 'killed: SIGKILL',
    expect: KILLED,
    why: KILLED_WHY,
    bound: sliceBound,
    run: (server, bound) => sceneSignal(server, 3, 'SIGKILL', bound, `a client is killed (SIGKILL) ${into}`),
  },
  {
    n: 4,
    job: WORKER,
    how: 'killed: SIGKILL',
    expect: KILLED,
    why: KILLED_WHY,
    bound: freeBound,
    run: (server, bound) =>
      sceneWorker(server, 4, 'SIGKILL', bound, `a job that never yields runs in a worker thread; its client is killed (SIGKILL) ${into}`),
  },
  {
    n: 5,
    job: WORKER,
    how: 'frozen: SIGSTOP',
    expect: ['HW_ERR_PEER_SILENT'],
    bound: silentBound,
    run: (server, bound) =>
      sceneWorker(server, 5, 'SIGSTOP', bound, `a job that never yields runs in a worker thread; its client is frozen (SIGSTOP) ${into}`),
  },
];

// ---- main --------------------------------------------------------------------

function printTable(rows) {
  const header = ['scene', 'job', 'the client', 'abort code', 'detected', 'bound', 'CPU used', 'saved', 'verdict'];
  const cells = rows.map((r) => [
    String(r.n),
    r.job,
    r.how,
    r.code ?? '-',
    r.detectMs === undefined ? '-' : fmtMs(r.detectMs),
    `${r.bound} ms`,
    r.cpu === undefined ? '-' : fmtS(r.cpu.usedMs),
    r.cpu === undefined ? '-' : fmtS(r.cpu.savedMs),
    r.verdict,
  ]);
  const right = [false, false, false, false, true, true, true, true, false];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((v, i) => (right[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('   ').trimEnd();
  console.log(`\n${line(header)}`);
  console.log(widths.map((w) => '-'.repeat(w)).join('   '));
  for (const c of cells) console.log(line(c));
}

async function main() {
  const server = new Proc('server', 'server.mjs', []);
  const listening = await server.waitFor((e) => e.ev === 'listening', 'port', PATIENCE_MS);
  Object.assign(server, {
    port: listening.port,
    heartbeatMs: listening.heartbeatMs,
    silentMs: listening.silentMs,
    sliceMs: listening.sliceMs,
  });
  console.log('heartwire demo: a TCP server stops each long CPU-heavy job the moment its client is gone');
  console.log(`  server   pid ${listening.pid} on 127.0.0.1:${listening.port}; heartbeat every ${listening.heartbeatMs} ms, a client is silent after ${listening.silentMs} ms without an answer`);
  console.log(`  jobs     'render' (scenes 1-3), on the main thread: busy CPU in ${listening.sliceMs} ms slices with one event-loop turn between, progress every 10%`);
  console.log(`           'spin' (scenes 4-5), in a worker thread: a loop that never yields, no await, no check; only the server can stop it, by force`);
  console.log('  times    ms since the demo started, one clock for all processes (performance.timeOrigin + performance.now())');
  console.log("  CPU      a job's length is CPU time of its own thread (/proc/PID/task/TID/schedstat); saved: its full length minus what it used");

  let stopping = false;
  void server.exited.then((exit) => {
    if (!stopping) timeline.note(`the server exited unexpectedly (${describeExit(exit)})`);
  });

  const rows = [];
  try {
    for (const scene of SCENES) {
      const bound = scene.bound(server);
      const row = { n: scene.n, job: scene.job, how: scene.how, bound, verdict: 'FAIL' };
      rows.push(row);
      try {
        if (server.exit !== undefined) {
          heading(scene.n, `${scene.job}, client ${scene.how}, not run`);
          throw new Error('the server is gone');
        }
        const { abort, cpu, detectMs, since } = await scene.run(server, bound);
        Object.assign(row, { code: abort.code, cpu, detectMs });
        const codeOk = scene.expect.includes(abort.code);
        if (!codeOk || detectMs < 0 || detectMs > bound + SLACK_MS) row.verdict = 'FAIL';
        else row.verdict = detectMs <= bound ? 'ok' : `late (< bound + ${SLACK_MS} ms)`;
        timeline.flush();
        console.log(
          `  => the server cancelled the job ${fmtMs(detectMs)} after ${since} (bound ${bound} ms): ${row.verdict}` +
            (codeOk ? '' : `; expected ${scene.expect.join(' or ')}`) +
            (scene.why?.[abort.code] === undefined ? '' : `\n     (${abort.code}: ${scene.why[abort.code]})`),
        );
      } catch (err) {
        timeline.flush();
        console.log(`  => FAILED: ${err.message}`);
      }
    }
  } finally {
    timeline.flush();
    stopping = true;
    server.child.stdin.end(); // the server closes and exits
    // An unref'd timer: once the server is gone, nothing keeps the demo waiting.
    const stopped = await Promise.race([server.exited, sleep(3000, undefined, { ref: false })]);
    if (stopped === undefined) await server.kill();
  }

  printTable(rows);
  const estimatedMs = Math.max(0, ...rows.map((r) => r.cpu?.estimatedMs ?? 0));
  console.log(
    `bound: FIN or kill: a main-thread job yields every ${server.sliceMs} ms, so a FIN is read within one slice; beside a worker job` +
      `\n       the main thread is free and reads it at once (+${FIN_MARGIN_MS} ms margin for both); frozen: heartbeat ${server.heartbeatMs} ms + silent ${server.silentMs} ms.` +
      `\n       A scene fails beyond bound + ${SLACK_MS} ms, or when its job still runs ${STOP_WITHIN_MS} ms after the abort.` +
      `\nCPU:   the job's own thread; a worker thread is read every ms from outside until it is gone, and the time between` +
      `\n       the last reading and its end (here at most ${fmtMs(estimatedMs)}) is counted as CPU: an upper bound.`,
  );
  const failed = rows.filter((r) => r.verdict === 'FAIL');
  console.log(failed.length === 0 ? `all ${rows.length} scenes detected in time (${fmtS(abs() - T0)})` : `${failed.length} scene(s) FAILED`);
  process.exitCode = failed.length === 0 ? 0 : 1;
}

main().catch((err) => {
  timeline.flush();
  console.error(`demo failed: ${err.stack ?? err}`);
  process.exitCode = 1;
});

// heartwire demo: real processes, a printed timeline, and a check.
//
//   pnpm demo        (builds the packages, then runs this file)
//
// One server process runs long CPU-heavy 'render' jobs. For each scene a new
// client process starts a job and then goes away in one of three ways; the
// server must stop the job within a bound. Every process reports JSON lines
// stamped with performance.timeOrigin + performance.now(), one clock for all
// processes on this machine, so times can be compared across them.
//
// Exits non-zero when a scene does not detect its client gone within its bound
// plus SLACK_MS, so the demo doubles as an end-to-end check.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
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
/** A FIN is read at the job's next yield: one CPU slice, plus this margin. */
const FIN_MARGIN_MS = 30;
/** A scene fails only when detection takes longer than its bound plus this. */
const SLACK_MS = 1000;
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
      return `job #${e.id} stopped ${fmtMs(e.lagMs)} after the abort; it had used ${fmtS(e.cpuMs)} of CPU, ${fmtS(e.totalMs - e.workMs)} of work saved`;
    case 'client:connected':
      return `connected (pid ${e.pid}); server announces heartbeat ${e.heartbeatMs} ms, silent ${e.silentMs} ms`;
    case 'client:accepted':
      return `#${e.id} render ${e.ms} ms: early header (ACCEPTED) arrived`;
    case 'client:progress':
      return e.ms >= SHOW_PROGRESS_FROM_MS ? `#${e.id} progress ${e.percent}%` : undefined;
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

/** Waits for the server's abort of `scene` and for its job to stop; returns the abort event. */
async function serverStops(server, scene, bound) {
  const abort = await server.waitFor((e) => e.ev === 'abort' && e.scene === scene, `abort of scene ${scene}'s job`, bound + SLACK_MS + 2000);
  await server.waitFor((e) => e.ev === 'stopped' && e.scene === scene, `end of scene ${scene}'s job`, 2000);
  return abort;
}

async function sceneHangUp(server) {
  heading(1, `a client runs three jobs on one connection and hangs up ${fmtS(GIVE_UP_AFTER_MS)} into the third`);
  const bound = server.sliceMs + FIN_MARGIN_MS;
  const client = startClient(server, 1, [SHORT_JOB_MS, SHORT_JOB_MS, LONG_JOB_MS], ['--hangup-after', GIVE_UP_AFTER_MS]);
  try {
    const hangup = await client.waitFor((e) => e.ev === 'hangup', 'hang-up', 2 * SHORT_JOB_MS + GIVE_UP_AFTER_MS + 10_000);
    for (const id of [1, 2]) {
      if (!client.events.some((e) => e.ev === 'result' && e.id === id)) throw new Error(`short job #${id} did not complete with a result`);
    }
    const abort = await serverStops(server, 1, bound);
    await client.exited;
    return { abort, detectMs: abort.t - hangup.t, bound, since: 'the hang-up' };
  } finally {
    await client.kill();
  }
}

async function sceneSignal(server, scene, signal, title) {
  heading(scene, title);
  const silent = signal === 'SIGSTOP';
  const bound = silent ? server.heartbeatMs + server.silentMs : server.sliceMs + FIN_MARGIN_MS;
  const client = startClient(server, scene, [LONG_JOB_MS]);
  try {
    await client.waitFor((e) => e.ev === 'accepted', 'early header', 10_000);
    await sleep(GIVE_UP_AFTER_MS); // the client works a while, then goes away
    const at = abs();
    process.kill(client.pid, signal);
    timeline.note(
      silent
        ? `SIGSTOP client pid ${client.pid}: frozen, sends nothing, its kernel still ACKs`
        : `SIGKILL client pid ${client.pid}: its kernel closes the socket`,
      at,
    );
    const abort = await serverStops(server, scene, bound);
    if (silent) {
      await client.kill('SIGKILL');
      timeline.note(`SIGKILL the frozen client: it is gone (${describeExit(client.exit)})`);
    } else {
      await client.exited;
    }
    return { abort, detectMs: abort.t - at, bound, since: signal };
  } finally {
    await client.kill();
  }
}

const SCENES = [
  {
    n: 1,
    how: 'hung up: client.close() (FIN)',
    expect: ['HW_ERR_PEER_CLOSED'],
    run: (server) => sceneHangUp(server),
  },
  {
    n: 2,
    how: 'frozen: SIGSTOP',
    expect: ['HW_ERR_PEER_SILENT'],
    run: (server) => sceneSignal(server, 2, 'SIGSTOP', `a client is frozen (SIGSTOP) ${fmtS(GIVE_UP_AFTER_MS)} into its job`),
  },
  {
    n: 3,
    how: 'killed: SIGKILL',
    // The kernel of a killed process sends FIN, or RST if unread bytes were in its buffer
    // or a PING reached it after it closed: both are a client gone, and seen as fast.
    expect: ['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET'],
    why: { HW_ERR_PEER_RESET: 'a PING crossed the dead client\'s FIN and its kernel answered with RST' },
    run: (server) => sceneSignal(server, 3, 'SIGKILL', `a client is killed (SIGKILL) ${fmtS(GIVE_UP_AFTER_MS)} into its job`),
  },
];

// ---- main --------------------------------------------------------------------

function printTable(rows) {
  const header = ['scene', 'the client', 'abort code', 'detected', 'bound', 'verdict'];
  const cells = rows.map((r) => [
    String(r.n),
    r.how,
    r.code ?? '-',
    r.detectMs === undefined ? '-' : fmtMs(r.detectMs),
    `${r.bound} ms`,
    r.verdict,
  ]);
  const right = [false, false, false, true, true, false];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((v, i) => (right[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('   ').trimEnd();
  console.log(`\n${line(header)}`);
  console.log(widths.map((w) => '-'.repeat(w)).join('   '));
  for (const c of cells) console.log(line(c));
}

async function main() {
  const server = new Proc('server', 'server.mjs', []);
  const listening = await server.waitFor((e) => e.ev === 'listening', 'port', 10_000);
  Object.assign(server, {
    port: listening.port,
    heartbeatMs: listening.heartbeatMs,
    silentMs: listening.silentMs,
    sliceMs: listening.sliceMs,
  });
  console.log('heartwire demo: a TCP server stops each long CPU-heavy job the moment its client is gone');
  console.log(`  server   pid ${listening.pid} on 127.0.0.1:${listening.port}; heartbeat every ${listening.heartbeatMs} ms, a client is silent after ${listening.silentMs} ms without an answer`);
  console.log(`  job      'render': busy CPU in ${listening.sliceMs} ms slices with one event-loop turn between, progress every 10%`);
  console.log('  times    ms since the demo started, one clock for all processes (performance.timeOrigin + performance.now())');

  let stopping = false;
  void server.exited.then((exit) => {
    if (!stopping) timeline.note(`the server exited unexpectedly (${describeExit(exit)})`);
  });

  const rows = [];
  try {
    for (const scene of SCENES) {
      const row = { n: scene.n, how: scene.how, bound: undefined, verdict: 'FAIL' };
      rows.push(row);
      try {
        if (server.exit !== undefined) {
          heading(scene.n, `${scene.how}, not run`);
          throw new Error('the server is gone');
        }
        const { abort, detectMs, bound, since } = await scene.run(server);
        Object.assign(row, { code: abort.code, detectMs, bound });
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
        row.bound ??= scene.n === 2 ? server.heartbeatMs + server.silentMs : server.sliceMs + FIN_MARGIN_MS;
        timeline.flush();
        console.log(`  => FAILED: ${err.message}`);
      }
    }
  } finally {
    timeline.flush();
    stopping = true;
    server.child.stdin.end(); // the server closes and exits
    const stopped = await Promise.race([server.exited, sleep(3000).then(() => undefined)]);
    if (stopped === undefined) await server.kill();
  }

  printTable(rows);
  console.log(
    `bound: FIN or kill: the job yields every ${server.sliceMs} ms, so a FIN is read within one slice (+${FIN_MARGIN_MS} ms margin);` +
      `\n       frozen: heartbeat ${server.heartbeatMs} ms + silent ${server.silentMs} ms. A scene fails beyond bound + ${SLACK_MS} ms.`,
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

import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connect, ConnectionError } from '@heartwire/client';
import {
  encodeFrame,
  encodeWelcome,
  FrameDecoder,
  FrameType,
  PayloadCodec,
  PROTOCOL_VERSION,
  type Frame,
} from '@heartwire/core';
import type { AbortCode, CallContext, HeartwireServer, ServerOptions } from '@heartwire/server';
import { ChildClient, type ChildEvent } from './harness/child.js';
import { RawPeer } from './harness/raw.js';
import { ServerEvents, startServer } from './harness/server.js';
import { Waiter } from './harness/waiter.js';

/*
 * Real sockets, real processes: each test makes the client go away one way
 * (FIN, RST, kill, freeze, stalled reader, ...) while a job runs, and checks the
 * reason the job's signal aborted with and how long the server took to see it.
 *
 * Nothing here sleeps to wait: tests wait on recorded events (server
 * diagnostics, child output lines, frames, job slices). The only timers are
 * the jobs' own 10 ms work slices.
 *
 * Time bounds are deliberately loose (they must hold on a loaded 2-core CI
 * machine); the measured times are printed with a "[peer-gone]" prefix.
 */

/** Short liveness bounds for the heartbeat-driven cases. */
const HEARTBEAT_MS = 100;
const SILENT_MS = 500;
const STALL_MS = 1000;
const BOUNDS: ServerOptions = { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS, stallMs: STALL_MS };

/**
 * For a stalled reader: no silent verdict within the test's bounds, so the stall rules judge
 * (no progress for stallMs, or the write-backlog cap). A PING timing out says STALLED only if
 * our output was backed up at that moment, and how soon a flood fills the kernel's buffers
 * depends on the machine's load: with the short silentMs the verdict was either code. (Which
 * code a timed-out PING gives is the liveness machine's, tested with a hand-driven clock.)
 */
const STALL_RULES: ServerOptions = { heartbeatMs: HEARTBEAT_MS, silentMs: 10_000, stallMs: STALL_MS };

/**
 * For the cases where the kernel's choice between FIN and RST depends on
 * whether server bytes sat unread in the dead client's socket (process exit,
 * SIGKILL) or where a server write could race the RST it is meant to observe:
 * no heartbeat goes out for 5 s after the call starts, so after ACCEPTED the
 * server writes nothing and the outcome is deterministic. FIN and RST need no
 * heartbeat; detecting them within milliseconds while the next heartbeat is
 * seconds away also shows they did not come from the heartbeat rules.
 */
const QUIET_HEARTBEAT_MS = 5000;
const QUIET: ServerOptions = { heartbeatMs: QUIET_HEARTBEAT_MS, silentMs: 5000, stallMs: STALL_MS };

/** Loose slack on top of any bound: scheduling noise on a busy machine, never the protocol. */
const SLACK_MS = 1500;

// ---- jobs ---------------------------------------------------------------------

interface JobParams {
  readonly tag?: unknown;
}

interface JobRecord {
  readonly id: number;
  readonly method: string;
  readonly tag: unknown;
  readonly startedAt: number;
  readonly signal: AbortSignal;
  slices: number;
  lastSliceAt: number;
  outcome?: 'result' | 'aborted';
}

/** The server's jobs: long async work in 10 ms slices, each one recorded so tests can wait on it. */
class Jobs {
  readonly records: JobRecord[] = [];
  /** Set to let every running `job` return its result at its next slice. */
  release = false;
  private readonly waiter = new Waiter();

  wake(): void {
    this.waiter.wake();
  }

  until<T>(find: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
    return this.waiter.until(find, what, timeoutMs);
  }

  started(ctx: CallContext, tag: unknown): JobRecord {
    const record: JobRecord = {
      id: ctx.id,
      method: ctx.method,
      tag,
      startedAt: performance.now(),
      signal: ctx.signal,
      slices: 0,
      lastSliceAt: performance.now(),
    };
    this.records.push(record);
    ctx.signal.addEventListener('abort', () => this.waiter.wake(), { once: true });
    this.wake();
    return record;
  }

  byId(id: number): JobRecord {
    const record = this.records.find((r) => r.id === id);
    if (record === undefined) throw new Error(`no job with stream id ${id}`);
    return record;
  }

  byTag(tag: unknown): JobRecord {
    const record = this.records.find((r) => r.tag === tag);
    if (record === undefined) throw new Error(`no job tagged ${String(tag)}`);
    return record;
  }

  /** Runs until its signal aborts (then rejects with the reason) or until `release`; 30 s at most. */
  readonly job = async (params: JobParams | null, ctx: CallContext): Promise<{ tag: unknown; slices: number }> => {
    const record = this.started(ctx, params?.tag);
    const giveUpAt = record.startedAt + 30_000;
    while (!ctx.signal.aborted && !this.release && performance.now() < giveUpAt) {
      await sleep(10);
      record.slices += 1;
      record.lastSliceAt = performance.now();
      this.wake();
    }
    if (ctx.signal.aborted) {
      record.outcome = 'aborted';
      this.wake();
      throw ctx.signal.reason;
    }
    record.outcome = 'result';
    this.wake();
    return { tag: params?.tag ?? null, slices: record.slices };
  };
}

// ---- per-test resources and cleanup ------------------------------------------

let events: ServerEvents | undefined;
const children: ChildClient[] = [];
const sockets: net.Socket[] = [];
const closers: Array<() => Promise<unknown>> = [];
const measured: string[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(
    children.splice(0).map(async (child) => {
      const { process: proc } = child;
      // A stopped process dies from SIGKILL too, but resume it first as the harness expects.
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGCONT');
      await child.dispose();
    }),
  );
  for (const close of closers.splice(0).reverse()) await close();
  events?.dispose();
  events = undefined;
});

afterAll(() => {
  console.log(`[peer-gone] detection times:\n  ${measured.join('\n  ')}`);
});

async function setup(
  options: ServerOptions,
  register: (server: HeartwireServer, jobs: Jobs) => void = () => {},
): Promise<{ server: HeartwireServer; port: number; jobs: Jobs; events: ServerEvents }> {
  const recorder = new ServerEvents();
  events = recorder;
  const jobs = new Jobs();
  const started = await startServer(options, (server) => {
    server.handle('job', jobs.job);
    server.handle('echo', (params: unknown) => params);
    register(server, jobs);
  });
  closers.push(started.close);
  return { server: started.server, port: started.port, jobs, events: recorder };
}

function spawnChild(port: number, options: Record<string, unknown> = {}): ChildClient {
  const child = new ChildClient(port, options);
  children.push(child);
  return child;
}

/** Starts call `id` of `method` in the child and resolves once its early header arrived (the job runs). */
async function startCall(child: ChildClient, id: number, method = 'job', params: unknown = { tag: id }): Promise<ChildEvent> {
  child.send({ cmd: 'call', id, method, params });
  return child.waitFor('accepted', (e) => e.id === id);
}

/** Connects a raw peer that may half-close, and completes the handshake by hand. */
async function rawHandshake(port: number, allowHalfOpen: boolean): Promise<RawPeer> {
  const peer = await RawPeer.connect(port, { allowHalfOpen });
  sockets.push(peer.socket);
  peer.send(FrameType.HELLO, 0, peer.codec.encode({ versions: [PROTOCOL_VERSION] }));
  await peer.frame((f) => f.type === FrameType.WELCOME);
  return peer;
}

function accepted(id: number): (f: Frame) => boolean {
  return (f) => f.type === FrameType.ACCEPTED && f.stream === id;
}

function report(label: string, ms: number): number {
  measured.push(`${label}: ${ms.toFixed(1)} ms`);
  return ms;
}

/** The job's own signal, the diagnostics abort and the connection close all carry `code`. */
async function expectGone(
  recorder: ServerEvents,
  job: JobRecord,
  code: AbortCode,
): Promise<{ at: number }> {
  const abort = await recorder.abort((m) => m.id === job.id);
  expect(abort.reason.code).toBe(code);
  expect(job.signal.aborted).toBe(true);
  expect((job.signal.reason as { code?: string }).code).toBe(code);
  const close = await recorder.close();
  expect(close.reason?.code).toBe(code);
  expect(recorder.aborts).toHaveLength(1);
  return abort;
}

// ---- the cases ------------------------------------------------------------------

describe('the server stops a job as soon as its client is gone', () => {
  it('1. clean close (FIN from client.close()) → HW_ERR_PEER_CLOSED at once', async () => {
    const { port, jobs, events: ev } = await setup(BOUNDS);
    const child = spawnChild(port);
    await startCall(child, 1);
    const job = jobs.byId(1);

    const faultAt = performance.now();
    child.send({ cmd: 'close' });
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_CLOSED');
    expect(report('1 clean close', abort.at - faultAt)).toBeLessThan(SLACK_MS);

    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_CLIENT_CLOSED');
    await child.waitFor('close-done');
  });

  it('2. process exit (kernel FIN) → HW_ERR_PEER_CLOSED at once', async () => {
    const { port, jobs, events: ev } = await setup(QUIET);
    const child = spawnChild(port);
    await startCall(child, 1);
    const job = jobs.byId(1);

    const faultAt = performance.now();
    child.send({ cmd: 'exit' });
    // Precondition of a FIN (not an RST): no server byte was sent after ACCEPTED, so none sat unread.
    expect(faultAt).toBeLessThan(job.startedAt + QUIET_HEARTBEAT_MS - 10);
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_CLOSED');
    expect(report('2 process exit', abort.at - faultAt)).toBeLessThan(SLACK_MS);
    await child.exited;
    expect(child.process.exitCode).toBe(0);
  });

  it('3. reset (RST from resetAndDestroy()) → HW_ERR_PEER_RESET at once', async () => {
    // QUIET: with nothing for the server to write, it can only learn of the RST by reading, as a
    // server that is not writing at that moment does. (A server write that happens to land between
    // the RST's arrival and the next read fails first, and is reported as HW_ERR_WRITE_FAILED.)
    const { port, jobs, events: ev } = await setup(QUIET);
    const { peer } = await RawPeer.handshake(port);
    sockets.push(peer.socket);
    peer.call(1, 'job', { tag: 'reset' });
    await peer.frame(accepted(1));
    const job = jobs.byId(1);

    const faultAt = performance.now();
    peer.socket.resetAndDestroy();
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_RESET');
    expect(report('3 reset', abort.at - faultAt)).toBeLessThan(SLACK_MS);
  });

  it('4. SIGKILL with nothing unread (kernel FIN) → HW_ERR_PEER_CLOSED at once', async () => {
    const { port, jobs, events: ev } = await setup(QUIET);
    const child = spawnChild(port);
    await startCall(child, 1);
    const job = jobs.byId(1);

    const faultAt = child.kill('SIGKILL');
    // The child printed 'accepted', so it had read everything the server sent (WELCOME, ACCEPTED);
    // the first PING is 5 s away: the kernel closes a socket with an empty receive queue with a FIN.
    expect(faultAt).toBeLessThan(job.startedAt + QUIET_HEARTBEAT_MS - 10);
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_CLOSED');
    expect(report('4 SIGKILL (FIN)', abort.at - faultAt)).toBeLessThan(SLACK_MS);
    await child.exited;
    expect(child.process.signalCode).toBe('SIGKILL');
  });

  it('4b. SIGKILL with server bytes unread in the dead client (kernel RST) → HW_ERR_PEER_RESET at once', async () => {
    let quiet = false;
    const writesAt: number[] = [];
    const { port, jobs, events: ev } = await setup(QUIET, (server, jobs) => {
      // Sends a small progress frame every 10 ms until told to be quiet, then just waits for its abort.
      server.handle('chatty', async (_params: unknown, ctx: CallContext) => {
        jobs.started(ctx, 'chatty');
        let n = 0;
        while (!ctx.signal.aborted) {
          if (!quiet) {
            ctx.progress({ n: ++n });
            writesAt.push(performance.now());
            jobs.wake();
          }
          await sleep(10);
        }
        throw ctx.signal.reason;
      });
    });
    const child = spawnChild(port);
    await startCall(child, 1, 'chatty', null);
    const job = jobs.byId(1);

    const stoppedAt = child.kill('SIGSTOP');
    // Two frames written after the freeze: they sit unread in the frozen child's receive queue.
    await jobs.until(() => (writesAt.filter((t) => t > stoppedAt).length >= 2 ? true : undefined), 'two writes after the freeze');
    // From now on the server writes nothing, so it learns of the RST by reading, not by a failed write.
    quiet = true;
    // The server sends what it wrote in a turn at the end of that turn: let the last frame leave first.
    await new Promise((resolve) => setImmediate(resolve));
    const faultAt = child.kill('SIGKILL');
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_RESET');
    expect(report('4b SIGKILL with unread data (RST)', abort.at - faultAt)).toBeLessThan(SLACK_MS);
  });

  it('5. frozen client (SIGSTOP) → HW_ERR_PEER_SILENT within heartbeatMs + silentMs, never before silentMs', async () => {
    const { port, jobs, events: ev } = await setup(BOUNDS);
    const child = spawnChild(port);
    await startCall(child, 1);
    const job = jobs.byId(1);

    const frozenAt = child.kill('SIGSTOP');
    // The connection armed its first PING heartbeatMs after the call began, just before the handler
    // started. Frozen before that moment, the child owes no PING: the first one it cannot answer
    // goes out after the freeze, so the verdict can come no sooner than frozenAt + silentMs.
    // (Frozen later, a PING sent just before the freeze may be unanswered only because the child
    // had not yet been scheduled to read it; then allow one heartbeat interval of such lag.)
    const noPingOwed = frozenAt < job.startedAt + HEARTBEAT_MS - 10;
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_SILENT');
    const ms = report(`5 SIGSTOP (frozen${noPingOwed ? '' : ', late freeze'})`, abort.at - frozenAt);
    expect(ms).toBeGreaterThanOrEqual(noPingOwed ? SILENT_MS - 1 : SILENT_MS - HEARTBEAT_MS);
    expect(ms).toBeLessThan(HEARTBEAT_MS + SILENT_MS + SLACK_MS);

    // Dead means reset: resumed, the child finds its connection reset, not a silent server.
    child.kill('SIGCONT');
    const error = await child.waitFor('error', (e) => e.id === 1);
    // (Its buffered PINGs are read first and its PONG write or its next read finds the reset;
    // the message names whichever saw it, so only the code is asserted.)
    expect(error.code).toBe('HW_ERR_CONNECTION_LOST');
    measured.push(`   (5: the resumed child's call failed with ${String(error.code)}: ${String(error.message)})`);
    const closed = await child.waitFor('closed');
    expect(closed.code).toBe('HW_ERR_CONNECTION_LOST');
  });

  it('6. stalled reader (paused socket, our output backs up) → HW_ERR_PEER_STALLED', async () => {
    let bytesQueued = 0;
    const { port, jobs, events: ev } = await setup(STALL_RULES, (server, jobs) => {
      // Writes 64 KiB progress frames as fast as it can, ignoring backpressure (only pacing itself
      // to one frame per 5 ms once the socket buffer is full, to bound the memory this test uses).
      server.handle('flood', async (_params: unknown, ctx: CallContext) => {
        jobs.started(ctx, 'flood');
        const chunk = new Uint8Array(64 * 1024);
        while (!ctx.signal.aborted) {
          const ok = ctx.progress(chunk);
          bytesQueued += chunk.byteLength;
          if (ok) await nextTurn();
          else await sleep(5);
        }
        throw ctx.signal.reason;
      });
    });
    const { peer } = await RawPeer.handshake(port);
    sockets.push(peer.socket);
    peer.call(1, 'flood', null);
    await peer.frame(accepted(1));
    const job = jobs.byId(1);

    // Stops reading for good, and (as a raw peer) never answers a PING.
    const faultAt = performance.now();
    peer.socket.pause();
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_STALLED');
    const ms = report('6 stalled reader', abort.at - faultAt);
    expect(ms).toBeLessThan(STALL_MS + SLACK_MS);
    measured.push(`   (6: ${(bytesQueued / 1024 / 1024).toFixed(1)} MiB of progress queued by the flood)`);
  });

  it('7. announced half-close keeps the job alive; a later failed write → HW_ERR_WRITE_FAILED', async () => {
    const { port, jobs, events: ev } = await setup(BOUNDS);
    const peer = await rawHandshake(port, true);
    peer.call(1, 'job', { tag: 'half' });
    await peer.frame(accepted(1));
    const job = jobs.byId(1);

    peer.send(FrameType.HALF_CLOSE, 0);
    peer.socket.end();
    // The peer answers no PING from now on: more than heartbeatMs + silentMs worth of PINGs must
    // arrive without any verdict (the silent rule is off after HALF_CLOSE).
    const from = peer.frames.length;
    const pingsWanted = Math.ceil((HEARTBEAT_MS + SILENT_MS) / HEARTBEAT_MS) + 2;
    const pings = (): number => peer.frames.slice(from).filter((f) => f.type === FrameType.PING).length;
    await peer.frame(() => pings() >= pingsWanted);
    expect(ev.aborts).toEqual([]);
    expect(ev.closes).toEqual([]);
    expect(job.signal.aborted).toBe(false);
    expect(job.outcome).toBeUndefined();
    expect(peer.ended || peer.closed).toBe(false);

    // Now the peer closes for real: its kernel answers the server's next PING with an RST.
    const faultAt = performance.now();
    peer.socket.destroy();
    const abort = await expectGone(ev, job, 'HW_ERR_WRITE_FAILED');
    expect(report('7 write failed after half-close', abort.at - faultAt)).toBeLessThan(HEARTBEAT_MS + SLACK_MS);
  });

  it('8. FIN without HALF_CLOSE from a peer that still reads → HW_ERR_PEER_CLOSED at once', async () => {
    const { port, jobs, events: ev } = await setup(BOUNDS);
    const peer = await rawHandshake(port, true);
    peer.call(1, 'job', { tag: 'fin' });
    await peer.frame(accepted(1));
    const job = jobs.byId(1);

    const faultAt = performance.now();
    peer.socket.end();
    const abort = await expectGone(ev, job, 'HW_ERR_PEER_CLOSED');
    expect(report('8 FIN without HALF_CLOSE', abort.at - faultAt)).toBeLessThan(SLACK_MS);
    // The peer's read side stayed open: it sees the server close the connection.
    await peer.gone();
    expect(peer.ended).toBe(true);
  });

  it('9. client cancel → HW_ERR_CANCELLED; the same connection then completes another call', async () => {
    const { port, jobs, events: ev } = await setup(BOUNDS);
    const child = spawnChild(port);
    await startCall(child, 1);
    const job = jobs.byId(1);

    const faultAt = performance.now();
    child.send({ cmd: 'cancel', id: 1 });
    const abort = await ev.abort((m) => m.id === job.id);
    expect(abort.reason.code).toBe('HW_ERR_CANCELLED');
    expect((job.signal.reason as { code?: string }).code).toBe('HW_ERR_CANCELLED');
    expect(report('9 cancel', abort.at - faultAt)).toBeLessThan(SLACK_MS);
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_ABORTED');

    child.send({ cmd: 'call', id: 2, method: 'echo', params: { answer: 42, text: 'still here' } });
    const result = await child.waitFor('result', (e) => e.id === 2);
    expect(result.value).toEqual({ answer: 42, text: 'still here' });
    expect(ev.aborts).toHaveLength(1);
    expect(ev.closes).toEqual([]);
  });

  it('10. server shutdown → HW_ERR_SERVER_SHUTDOWN for the job and for the client call', async () => {
    const { server, port, jobs, events: ev } = await setup(BOUNDS);
    const child = spawnChild(port);
    await startCall(child, 1);
    const job = jobs.byId(1);

    const faultAt = performance.now();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const abort = await expectGone(ev, job, 'HW_ERR_SERVER_SHUTDOWN');
    expect(report('10 server shutdown', abort.at - faultAt)).toBeLessThan(SLACK_MS);
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_SERVER_SHUTDOWN');
    const goaway = await child.waitFor('goaway');
    expect(goaway.code).toBe('HW_ERR_SERVER_SHUTDOWN');
    await serverClosed;
  });

  it('11. a blocked server event loop (5× silentMs) is not a silent client: the job goes on', async () => {
    const heartbeatMs = 100;
    const silentMs = 300;
    const blockMs = 1500;
    let block: { start: number; end: number } | undefined;
    const { port, jobs, events: ev } = await setup({ heartbeatMs, silentMs, stallMs: STALL_MS }, (server, jobs) => {
      server.handle('blocker', (params: JobParams, ctx: CallContext) => {
        // The connection armed its first PING timer (heartbeatMs) just before this handler ran; a
        // timer of the same duration armed now fires right after it, in the same timers phase. So
        // the loop blocks just after that PING went out, and its PONG waits in the kernel until the
        // loop frees: the first liveness tick after the block sees a PING overdue by ~1200 ms.
        setTimeout(() => {
          const start = performance.now();
          const until = Date.now() + blockMs;
          while (Date.now() < until) {
            // busy: a CPU-bound main thread
          }
          block = { start, end: performance.now() };
          jobs.wake();
        }, heartbeatMs);
        return jobs.job(params, ctx);
      });
      server.handle('finish', () => {
        jobs.release = true;
        return 'finishing';
      });
    });
    // The client must not give up on the blocked server itself.
    const child = spawnChild(port, { serverSilentMs: 10_000 });
    await startCall(child, 1, 'blocker', { tag: 'long' });
    const job = jobs.byId(1);

    const blocked = await jobs.until(() => block, 'the end of the block');
    expect(blocked.end - blocked.start).toBeGreaterThanOrEqual(blockMs - 1);
    // Let the job run on for more than heartbeatMs + silentMs past the block (heartbeats flowing).
    await jobs.until(() => (job.lastSliceAt - blocked.end > heartbeatMs + silentMs + 2 * heartbeatMs ? true : undefined), 'job slices after the block');
    expect(ev.aborts).toEqual([]);
    expect(ev.closes).toEqual([]);
    expect(job.signal.aborted).toBe(false);

    child.send({ cmd: 'call', id: 2, method: 'finish', params: null });
    expect((await child.waitFor('result', (e) => e.id === 2)).value).toBe('finishing');
    const result = await child.waitFor('result', (e) => e.id === 1);
    expect(result.value).toMatchObject({ tag: 'long' });
    expect(job.outcome).toBe('result');
    expect(ev.aborts).toEqual([]);
    expect(child.events.filter((e) => e.event === 'error' || e.event === 'closed')).toEqual([]);
    measured.push(`   (11: server loop blocked ${(blocked.end - blocked.start).toFixed(0)} ms with silentMs ${silentMs}: no abort)`);
  });

  it('12. client side: a server frozen after ACCEPTED → the call rejects with HW_ERR_SERVER_SILENT', async () => {
    const heartbeatMs = 100;
    const silentMs = 300;
    const codec = new PayloadCodec();
    const waiter = new Waiter();
    const serverSide: { error?: NodeJS.ErrnoException; closed: boolean } = { closed: false };
    // A fake server: handshake and early header by hand, then nothing at all, as if frozen.
    const fake = net.createServer((socket) => {
      sockets.push(socket);
      const decoder = new FrameDecoder({ maxPayloadBytes: 1 << 20 });
      socket.on('data', (chunk) => {
        decoder.push(chunk, (frame) => {
          if (frame.type === FrameType.HELLO) {
            const welcome = { version: PROTOCOL_VERSION, heartbeatMs, silentMs, maxFrameBytes: 1 << 20, maxCalls: 10 };
            socket.write(encodeFrame(FrameType.WELCOME, 0, encodeWelcome(codec, welcome)));
          } else if (frame.type === FrameType.CALL) {
            socket.write(encodeFrame(FrameType.ACCEPTED, frame.stream));
          }
        });
      });
      socket.on('error', (err) => {
        serverSide.error = err;
      });
      socket.on('close', () => {
        serverSide.closed = true;
        waiter.wake();
      });
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    closers.push(() => new Promise<void>((resolve) => fake.close(() => resolve())));
    const { port } = fake.address() as AddressInfo;

    const client = await connect({ host: '127.0.0.1', port });
    closers.push(() => client.close());
    const clientClosed = once(client, 'close');
    let acceptedAt: number | undefined;
    const outcome = await client
      .call('job', null, { onAccepted: () => (acceptedAt = performance.now()) })
      .then(
        (value) => ({ value, error: undefined, at: performance.now() }),
        (error: unknown) => ({ value: undefined, error, at: performance.now() }),
      );
    expect(outcome.error).toBeInstanceOf(ConnectionError);
    expect((outcome.error as ConnectionError).code).toBe('HW_ERR_SERVER_SILENT');
    expect(acceptedAt).toBeDefined();
    // The bound runs from the last frame received (ACCEPTED), which arrived just before onAccepted ran.
    const bound = heartbeatMs + silentMs;
    const ms = report('12 frozen server (client side)', outcome.at - (acceptedAt as number));
    expect(ms).toBeGreaterThanOrEqual(bound - 1);
    expect(ms).toBeLessThan(bound + SLACK_MS);
    const [closeError] = (await clientClosed) as [ConnectionError | undefined];
    expect(closeError?.code).toBe('HW_ERR_SERVER_SILENT');
    // Dead means reset: the fake server sees an RST, not a FIN.
    await waiter.until(() => (serverSide.closed ? true : undefined), 'the fake server socket closing', 20_000);
    expect(serverSide.error?.code).toBe('ECONNRESET');
  });

  it('13. the client hides heartbeats: 3 progress events and one result over a 1 s job', async () => {
    const heartbeatMs = 100;
    const silentMs = 300;
    const { port, jobs, events: ev } = await setup({ heartbeatMs, silentMs, stallMs: STALL_MS }, (server, jobs) => {
      server.handle('steps', async (_params: unknown, ctx: CallContext) => {
        const record = jobs.started(ctx, 'steps');
        let sent = 0;
        for (;;) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          const elapsed = performance.now() - record.startedAt;
          while (sent < 3 && elapsed >= (sent + 1) * 250) ctx.progress({ step: ++sent });
          if (elapsed >= 1000) return { done: true, steps: sent, elapsedMs: Math.round(elapsed) };
          await sleep(10);
        }
      });
    });
    const child = spawnChild(port);
    child.send({ cmd: 'call', id: 1, method: 'steps', params: null });
    const result = await child.waitFor('result', (e) => e.id === 1);
    expect(result.value).toMatchObject({ done: true, steps: 3 });

    const mine = child.events.filter((e) => e.id === 1);
    expect(mine.map((e) => e.event)).toEqual(['accepted', 'progress', 'progress', 'progress', 'result']);
    expect(mine.filter((e) => e.event === 'progress').map((e) => e.data)).toEqual([{ step: 1 }, { step: 2 }, { step: 3 }]);
    expect(child.events.map((e) => e.event)).toEqual(['connected', 'accepted', 'progress', 'progress', 'progress', 'result']);
    // ~10 PINGs went out during the job; unanswered, the job would have died after heartbeatMs + silentMs.
    expect((result.value as { elapsedMs: number }).elapsedMs).toBeGreaterThan(heartbeatMs + silentMs);
    expect(ev.aborts).toEqual([]);
    expect(ev.closes).toEqual([]);
  });

  it('14. ten concurrent calls on one connection, one cancelled: only that one aborts', async () => {
    const { port, jobs, events: ev } = await setup(BOUNDS);
    const child = spawnChild(port);
    const ids = Array.from({ length: 10 }, (_, i) => i + 1);
    for (const id of ids) child.send({ cmd: 'call', id, method: 'job', params: { tag: id } });
    await Promise.all(ids.map((id) => child.waitFor('accepted', (e) => e.id === id)));
    await jobs.until(() => (jobs.records.length === 10 ? true : undefined), 'ten jobs running');

    const victim = jobs.byTag(5);
    const faultAt = performance.now();
    child.send({ cmd: 'cancel', id: 5 });
    const abort = await ev.abort();
    expect(abort.id).toBe(victim.id);
    expect(abort.reason.code).toBe('HW_ERR_CANCELLED');
    report('14 cancel one of ten', abort.at - faultAt);
    expect((await child.waitFor('error', (e) => e.id === 5)).code).toBe('HW_ERR_ABORTED');

    jobs.release = true;
    const others = ids.filter((id) => id !== 5);
    const results = await Promise.all(others.map((id) => child.waitFor('result', (e) => e.id === id)));
    expect(results.map((r) => (r.value as { tag: unknown }).tag)).toEqual(others);
    expect(ev.aborts).toHaveLength(1);
    expect(ev.closes).toEqual([]);
    for (const record of jobs.records) {
      expect(record.outcome).toBe(record === victim ? 'aborted' : 'result');
    }
    expect(child.events.filter((e) => e.event === 'error').map((e) => e.id)).toEqual([5]);
  });
});

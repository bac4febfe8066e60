/**
 * The live fuzz, shared by the suite (test/fuzz.test.ts, a short run) and
 * `pnpm fuzz` (test/fuzz/long.ts, minutes): a real server on 127.0.0.1, one
 * well-behaved client calling it all along, and many hostile connections,
 * each sending a script of random bytes, random frames, or a valid session
 * mutated at random, cut into random chunks. Every hostile connection must
 * end within a bound, closed by the server with a clear reason (and, when
 * it broke a rule, a GOAWAY with a known code as the last frame it got);
 * everything the server sent must be well-formed; the good client must see
 * no failure; no job may be left running; and the process must see no
 * uncaught exception or unhandled rejection. Scripts come from fast-check
 * with a seed, printed with any failure, so a failing run can be replayed.
 */
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { connect } from '@heartwire/client';
import {
  decodeCallError,
  decodeGoAway,
  encodeFrame,
  encodePingPayload,
  FrameDecoder,
  FrameType,
  PayloadCodec,
  PEER_GONE_CODES,
  PROTOCOL_VERSION,
  PROTOCOL_VIOLATION_CODES,
  REFUSAL_CODES,
  type Frame,
} from '@heartwire/core';
import { createServer, type CallContext, type ConnectionCloseMessage } from '@heartwire/server';

export interface LiveFuzzOptions {
  /** fast-check seed of the scripts. */
  readonly seed: number;
  /** Hostile connections to run at most… */
  readonly connections: number;
  /** …or for this long, whichever ends first. */
  readonly durationMs: number;
  /** Hostile connections open at once. */
  readonly concurrency: number;
  /** Called every few hundred connections with the report so far. */
  readonly onProgress?: (report: LiveFuzzReport) => void;
}

export interface LiveFuzzReport {
  readonly seed: number;
  connections: number;
  /** How the hostile connections ended: `goaway CODE`, `closed CODE` or `clean end`, with counts. */
  readonly outcomes: Record<string, number>;
  /** Calls of the well-behaved client, all answered correctly. */
  goodCalls: number;
  elapsedMs: number;
}

/** What a hostile connection sends. */
interface Script {
  readonly kind: string;
  readonly bytes: Uint8Array;
  readonly chunkSizes: number[];
  /** After the last byte: FIN, RST, or stay silent a while (the server's own deadlines must end it), then FIN. */
  readonly ending: 'fin' | 'reset' | 'linger';
}

const codec = new PayloadCodec();
const HOST = '127.0.0.1';
/** A hostile connection must be closed by the server within this after its last byte: far above any bound below. */
const CLOSE_BOUND_MS = 10_000;
/** How long a lingering connection stays silent: past the server's handshake deadline, so an unfinished handshake is cut. */
const LINGER_MS = 800;
/** What a hostile peer can draw: a GOAWAY for a violation or a limit, and on the server a close with that code or a peer-gone one. */
const GOAWAY_CODES: ReadonlySet<string> = new Set([...PROTOCOL_VIOLATION_CODES, ...REFUSAL_CODES]);
const CLOSE_REASONS: ReadonlySet<string> = new Set([...GOAWAY_CODES, ...PEER_GONE_CODES]);
const SERVER_FRAME_TYPES = new Set<number>([
  FrameType.WELCOME,
  FrameType.ACCEPTED,
  FrameType.PROGRESS,
  FrameType.RESULT,
  FrameType.ERROR,
  FrameType.PING,
  FrameType.PONG,
  FrameType.GOAWAY,
]);

// ---- scripts ------------------------------------------------------------------

const paramsArb = fc.oneof(
  fc.constant(null),
  fc.integer(),
  fc.string({ maxLength: 24 }),
  fc.uint8Array({ maxLength: 24 }),
  fc.array(fc.integer(), { maxLength: 6 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.integer(), { maxKeys: 4 }),
);

/** One frame of a plausible session; `stream` of a CALL is assigned in order later. */
const frameSpecArb = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('call'), method: fc.constantFrom('echo', 'slow', 'boom', 'chatty', 'nope', ''), params: paramsArb }), weight: 5 },
  { arbitrary: fc.record({ t: fc.constant('cancel'), back: fc.nat(4) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('ping'), seq: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('pong'), seq: fc.nat(4) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('half-close') }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('unknown'), type: fc.integer({ min: 0x0d, max: 0xff }), stream: fc.nat(), payload: fc.uint8Array({ maxLength: 32 }) }), weight: 1 },
);

const helloArb = fc.oneof(
  { arbitrary: fc.constant({ versions: [PROTOCOL_VERSION] }), weight: 6 },
  { arbitrary: fc.record({ versions: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }), heartbeatMs: fc.integer({ min: -5, max: 5000 }) }), weight: 1 },
  { arbitrary: fc.record({ versions: fc.constant([PROTOCOL_VERSION]), maxFrameBytes: fc.integer({ min: 0, max: 1 << 20 }) }), weight: 1 },
);

function sessionBytes(hello: object, specs: Array<Record<string, unknown>>): Uint8Array {
  const frames: Uint8Array[] = [encodeFrame(FrameType.HELLO, 0, codec.encode(hello))];
  let id = 0;
  for (const spec of specs) {
    switch (spec.t) {
      case 'call':
        frames.push(encodeFrame(FrameType.CALL, ++id, codec.encode([spec.method, spec.params])));
        break;
      case 'cancel':
        frames.push(encodeFrame(FrameType.CANCEL, Math.max(1, id - (spec.back as number))));
        break;
      case 'ping':
        frames.push(encodeFrame(FrameType.PING, 0, encodePingPayload(spec.seq as number)));
        break;
      case 'pong':
        frames.push(encodeFrame(FrameType.PONG, 0, encodePingPayload(spec.seq as number)));
        break;
      case 'half-close':
        frames.push(encodeFrame(FrameType.HALF_CLOSE, 0));
        break;
      default:
        frames.push(encodeFrame(spec.type as number, spec.stream as number, spec.payload as Uint8Array));
    }
  }
  return Buffer.concat(frames);
}

/** An edit of a byte string: set a byte, flip a bit, insert bytes, delete a run, or cut it short. */
const mutationArb = fc.oneof(
  fc.record({ m: fc.constant('set'), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ m: fc.constant('flip'), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ m: fc.constant('insert'), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ m: fc.constant('delete'), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ m: fc.constant('truncate'), at: fc.nat() }),
);

function mutate(bytes: Uint8Array, mutations: Array<Record<string, unknown>>): Uint8Array {
  const out = Array.from(bytes);
  for (const mutation of mutations) {
    const at = out.length === 0 ? 0 : (mutation.at as number) % out.length;
    switch (mutation.m) {
      case 'set':
        out[at] = mutation.byte as number;
        break;
      case 'flip':
        out[at] = ((out[at] ?? 0) ^ (1 << (mutation.bit as number))) & 0xff;
        break;
      case 'insert':
        out.splice(at, 0, ...(mutation.bytes as Uint8Array));
        break;
      case 'delete':
        out.splice(at, mutation.length as number);
        break;
      default:
        out.length = at;
    }
  }
  return Uint8Array.from(out);
}

const scriptArb: fc.Arbitrary<Script> = fc
  .record({
    kind: fc.constantFrom('random bytes', 'valid session', 'mutated session', 'mutated session', 'random frames'),
    hello: helloArb,
    specs: fc.array(frameSpecArb, { maxLength: 12 }),
    mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
    random: fc.uint8Array({ maxLength: 1500 }),
    frames: fc.array(
      fc.record({ type: fc.integer({ min: 0, max: 255 }), stream: fc.nat(), payload: fc.uint8Array({ maxLength: 64 }) }),
      { maxLength: 8 },
    ),
    chunkSizes: fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }),
    ending: fc.oneof(
      { arbitrary: fc.constant<'fin'>('fin'), weight: 32 },
      { arbitrary: fc.constant<'reset'>('reset'), weight: 8 },
      { arbitrary: fc.constant<'linger'>('linger'), weight: 1 },
    ),
  })
  .map(({ kind, hello, specs, mutations, random, frames, chunkSizes, ending }) => {
    let bytes: Uint8Array;
    if (kind === 'random bytes') bytes = random;
    else if (kind === 'valid session') bytes = sessionBytes(hello, specs);
    else if (kind === 'mutated session') bytes = mutate(sessionBytes(hello, specs), mutations);
    else bytes = Buffer.concat([sessionBytes({ versions: [PROTOCOL_VERSION] }, []), ...frames.map((f) => encodeFrame(f.type, f.stream, f.payload))]);
    return { kind, bytes, chunkSizes, ending };
  });

/** Scripts are drawn in batches, batch b from seed + b, so a long run holds one batch at a time and script i is always the same. */
const BATCH = 1000;
let batchCache: { seed: number; batch: number; scripts: Script[] } | undefined;
function scriptAt(seed: number, i: number): Script {
  const batch = Math.floor(i / BATCH);
  if (batchCache?.seed !== seed || batchCache.batch !== batch) {
    batchCache = { seed, batch, scripts: fc.sample(scriptArb, { seed: seed + batch, numRuns: BATCH }) };
  }
  return batchCache.scripts[i % BATCH] as Script;
}

// ---- one hostile connection -----------------------------------------------------

/** How one hostile connection ended, after every check on it passed. */
async function runHostile(
  port: number,
  script: Script,
  closeOf: (port: number) => Promise<ConnectionCloseMessage>,
): Promise<string> {
  const socket = net.connect({ host: HOST, port, allowHalfOpen: true });
  socket.setNoDelay(true);
  const frames: Frame[] = [];
  const decoder = new FrameDecoder({ maxPayloadBytes: 64 * 1024 * 1024 });
  let outputError: unknown;
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk, (frame) => frames.push({ ...frame, payload: frame.payload.slice() }));
    } catch (err) {
      outputError = err;
    }
  });
  socket.on('error', () => {});
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  const localPort = socket.localPort as number;
  const serverClose = closeOf(localPort);
  let offset = 0;
  for (let i = 0; offset < script.bytes.byteLength && !socket.destroyed; i++) {
    const size = script.chunkSizes[i % script.chunkSizes.length] as number;
    const chunk = script.bytes.subarray(offset, offset + size);
    offset += size;
    await new Promise<void>((resolve) => socket.write(chunk, () => resolve()));
  }
  const sentAt = performance.now();
  if (script.ending === 'linger') await Promise.race([closed, sleep(LINGER_MS)]);
  if (script.ending === 'reset' && !socket.destroyed) socket.resetAndDestroy();
  else socket.end();
  const bound = sleep(CLOSE_BOUND_MS, 'timeout' as const, { ref: false });
  if ((await Promise.race([closed.then(() => 'closed' as const), bound])) === 'timeout') {
    socket.destroy();
    throw new Error(`the server did not close the connection within ${CLOSE_BOUND_MS} ms of the last byte`);
  }
  if (outputError !== undefined) throw new Error(`the server sent bytes that are not frames: ${(outputError as Error).message}`);
  checkServerFrames(frames);
  // A connection reset before the server even accepted it has no peer address left to report:
  // the end-of-run checks (no call running, no connection open) still cover it.
  if (script.ending === 'reset') return 'reset by the peer';
  const close = await Promise.race([serverClose, bound.then(() => undefined)]);
  if (close === undefined) throw new Error('the server published no connection close');
  const goaway = frames.find((f) => f.type === FrameType.GOAWAY);
  const reason = close.reason;
  if (reason !== undefined && !CLOSE_REASONS.has(reason.code)) throw new Error(`close reason ${reason.code} is not one of the known ones`);
  const causeCode = (reason?.cause as { code?: string } | undefined)?.code;
  if (goaway !== undefined) {
    const body = decodeGoAway(codec, goaway.payload);
    if (!GOAWAY_CODES.has(body.code)) throw new Error(`GOAWAY code ${body.code} is not one of the known ones`);
    if (frames.at(-1) !== goaway) throw new Error('a frame followed the GOAWAY');
    // The verdict keeps its code end to end.
    if (reason?.code !== body.code || causeCode !== body.code) {
      throw new Error(`GOAWAY ${body.code} on the wire, but the server recorded ${reason?.code}/${causeCode}`);
    }
    return `goaway ${body.code}`;
  }
  // A protocol error the peer could still read must have reached it as a GOAWAY.
  if (reason !== undefined && GOAWAY_CODES.has(reason.code) && script.ending === 'fin') {
    throw new Error(`closed for ${causeCode} without a GOAWAY on the wire (${(performance.now() - sentAt).toFixed(0)} ms after the last byte)`);
  }
  return reason === undefined ? 'clean end' : `closed ${reason.code}`;
}

/** Everything a server sends is a server frame on the right kind of stream; ERRORs decode. */
function checkServerFrames(frames: Frame[]): void {
  frames.forEach((frame, i) => {
    if (!SERVER_FRAME_TYPES.has(frame.type)) throw new Error(`the server sent frame type 0x${frame.type.toString(16)}`);
    const connectionFrame = [FrameType.WELCOME, FrameType.PING, FrameType.PONG, FrameType.GOAWAY].includes(frame.type as 2);
    if (connectionFrame !== (frame.stream === 0)) throw new Error(`frame type 0x${frame.type.toString(16)} on stream ${frame.stream}`);
    if (frame.type === FrameType.WELCOME && i !== 0) throw new Error('WELCOME was not the first frame');
    if (frame.type === FrameType.ERROR) decodeCallError(codec, frame.payload);
  });
}

// ---- the run ----------------------------------------------------------------------

export async function runLiveFuzz(options: LiveFuzzOptions): Promise<LiveFuzzReport> {
  const report: LiveFuzzReport = { seed: options.seed, connections: 0, outcomes: {}, goodCalls: 0, elapsedMs: 0 };
  const began = performance.now();

  const faults: unknown[] = [];
  const onFault = (err: unknown): void => {
    faults.push(err);
  };
  process.on('uncaughtException', onFault);
  process.on('unhandledRejection', onFault);

  // Server-side records: connection closes by client port, and calls started and ended.
  const closes = new Map<number, ConnectionCloseMessage>();
  const closeWaiters = new Map<number, (m: ConnectionCloseMessage) => void>();
  const onClose = (message: unknown): void => {
    const m = message as ConnectionCloseMessage;
    const waiter = closeWaiters.get(m.remotePort as number);
    if (waiter === undefined) closes.set(m.remotePort as number, m);
    else waiter(m);
  };
  let callsRunning = 0;
  const onStart = (): void => {
    callsRunning++;
  };
  const onEnd = (): void => {
    callsRunning--;
  };
  diagnostics.subscribe('heartwire:server:connection:close', onClose);
  diagnostics.subscribe('heartwire:server:call:start', onStart);
  diagnostics.subscribe('heartwire:server:call:end', onEnd);
  // Called as soon as a hostile connection is up, before it sent anything: whatever is recorded
  // for its port is from an earlier connection that used the same port.
  const closeOf = (port: number): Promise<ConnectionCloseMessage> => {
    closes.delete(port);
    return new Promise((resolve) => {
      closeWaiters.set(port, (m) => {
        closeWaiters.delete(port);
        closes.delete(port);
        resolve(m);
      });
    });
  };

  let releaseHeld!: () => void;
  const held = new Promise<void>((resolve) => {
    releaseHeld = resolve;
  });
  const server = createServer({
    heartbeatMs: 100,
    minHeartbeatMs: 10,
    silentMs: 300,
    stallMs: 1000,
    handshakeTimeoutMs: 500,
    maxFrameBytes: 64 * 1024,
    maxCallsPerConnection: 8,
  });
  const abortable = (ms: number, ctx: CallContext) => sleep(ms, undefined, { signal: ctx.signal });
  server.handle('echo', (params: unknown) => params);
  server.handle('slow', async (_params: unknown, ctx: CallContext) => {
    await abortable(Math.floor(Math.random() * 30), ctx);
    return 'slow';
  });
  server.handle('boom', () => {
    throw new Error('boom');
  });
  server.handle('chatty', async (_params: unknown, ctx: CallContext) => {
    for (let i = 0; i < 3; i++) {
      ctx.progress({ i });
      await abortable(5, ctx);
    }
    return 'chatty';
  });
  server.handle('hold', async () => {
    await held;
    return 'held';
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const good = await connect({ host: HOST, port, heartbeatMs: 100 });
  const heldCall = good.call('hold');
  let stop = false;
  const goodLoop = (async () => {
    for (let n = 0; !stop; n++) {
      const params = { n, text: 'x'.repeat(n % 200), list: [n, -n, n / 3] };
      const result = await good.call('echo', params);
      if (JSON.stringify(result) !== JSON.stringify(params)) throw new Error(`the good client got ${JSON.stringify(result)}`);
      report.goodCalls++;
      await sleep(2);
    }
  })();
  goodLoop.catch(() => {});

  let failure: Error | undefined;
  try {
    let index = 0;
    const deadline = began + options.durationMs;
    const worker = async (): Promise<void> => {
      while (failure === undefined && index < options.connections && performance.now() < deadline) {
        const i = index++;
        const script = scriptAt(options.seed, i);
        try {
          const outcome = await runHostile(port, script, closeOf);
          report.outcomes[outcome] = (report.outcomes[outcome] ?? 0) + 1;
          report.connections++;
          if (report.connections % 500 === 0) {
            report.elapsedMs = performance.now() - began;
            options.onProgress?.(report);
          }
        } catch (err) {
          const hex = Buffer.from(script.bytes.subarray(0, 256)).toString('hex');
          failure ??= new Error(
            `live fuzz seed ${options.seed}, script ${i} (${script.kind}, ${script.bytes.byteLength} bytes, chunks ${script.chunkSizes.join('/')}, ${script.ending}): ${(err as Error).message}\n  first bytes: ${hex}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    if (failure !== undefined) throw failure;

    // The good client: every call answered, its long call untouched, its connection never closed.
    stop = true;
    await goodLoop;
    releaseHeld();
    if ((await heldCall) !== 'held') throw new Error('the held call of the good client did not complete');
    if (!good.acceptsCalls) throw new Error('the good client lost its connection');
    if (report.goodCalls === 0) throw new Error('the good client made no call');
    // No job left running once every hostile connection is gone.
    if (callsRunning !== 0) throw new Error(`${callsRunning} calls still running on the server`);
    if (server.connectionCount !== 1) throw new Error(`${server.connectionCount} connections open, expected the good one only`);
  } finally {
    stop = true;
    releaseHeld();
    await goodLoop.catch(() => {});
    await good.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    diagnostics.unsubscribe('heartwire:server:connection:close', onClose);
    diagnostics.unsubscribe('heartwire:server:call:start', onStart);
    diagnostics.unsubscribe('heartwire:server:call:end', onEnd);
    // One more turn, for a rejection left unhandled by the last connection.
    await new Promise((resolve) => setImmediate(resolve));
    process.off('uncaughtException', onFault);
    process.off('unhandledRejection', onFault);
  }
  if (faults.length > 0) throw new Error(`live fuzz seed ${options.seed}: process faults: ${faults.map(String).join('; ')}`);
  report.elapsedMs = performance.now() - began;
  return report;
}


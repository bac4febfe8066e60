/**
 * A load generator of `pnpm bench:scale`: `count` connections from one source
 * address, each answering the server's heartbeats at once.
 *   heartwire  a hand-written protocol peer (no client library, so the load
 *              stays light and every PING is seen): HELLO, then one CALL of
 *              `job` that outlasts the run, then a PONG for every PING;
 *   bare       a 1-byte pong for every 1-byte ping.
 * Within a window of shared time it counts the pings and records how far
 * each interval between two pings of one connection strayed from the nominal.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeFrame, FrameDecoder, FrameType, PayloadCodec, PROTOCOL_VERSION, type Frame } from '@heartwire/core';
import { servePeer } from '../lib/process.js';

const mode = process.argv[2];
if (mode !== 'heartwire' && mode !== 'bare') throw new Error(`usage: load.ts heartwire|bare, got ${mode}`);

/** Connections opened at once: well inside the listen backlog. */
const CONNECT_BATCH = 200;

const codec = new PayloadCodec();
const hello = encodeFrame(FrameType.HELLO, 0, codec.encode({ versions: [PROTOCOL_VERSION] }));
const call = encodeFrame(FrameType.CALL, 1, codec.encode(['job', null]));
const pong = Buffer.from([2]);

/** Pings seen in the window, and each interval's deviation from the nominal, in %. */
class Window {
  from = Infinity;
  to = -Infinity;
  nominalMs = 1000;
  pings = 0;
  readonly deviationsPct: number[] = [];

  /** A ping arrived now; `previous` was the connection's last one (performance.now()). */
  ping(at: number, previous: number): void {
    const shared = performance.timeOrigin + at;
    if (shared < this.from || shared > this.to) return;
    this.pings++;
    if (performance.timeOrigin + previous >= this.from) {
      this.deviationsPct.push((Math.abs(at - previous - this.nominalMs) / this.nominalMs) * 100);
    }
  }
}

const window = new Window();
let ready = 0;
let failed = 0;
const sockets: net.Socket[] = [];

function openOne(port: number, localAddress: string, onReady: () => void): void {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress, noDelay: true });
  sockets.push(socket);
  let lastPing = -Infinity;
  const onPing = (): void => {
    const at = performance.now();
    window.ping(at, lastPing);
    lastPing = at;
  };
  socket.on('error', () => {});
  socket.on('close', () => failed++);
  if (mode === 'bare') {
    socket.on('connect', onReady);
    socket.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) {
        onPing();
        socket.write(pong);
      }
    });
    return;
  }
  const decoder = new FrameDecoder({ maxPayloadBytes: 1024 * 1024 });
  const onFrame = (frame: Frame): void => {
    switch (frame.type) {
      case FrameType.WELCOME:
        socket.write(call);
        return;
      case FrameType.ACCEPTED:
        onReady();
        return;
      case FrameType.PING:
        onPing();
        socket.write(encodeFrame(FrameType.PONG, 0, frame.payload));
        return;
      default:
        failed++;
    }
  };
  socket.on('connect', () => socket.write(hello));
  socket.on('data', (chunk: Buffer) => decoder.push(chunk, onFrame));
}

/** Opens `count` connections, CONNECT_BATCH at a time; resolves when all are ready (call accepted, or connected). */
async function open({ port, count, localAddress }: { port: number; count: number; localAddress: string }): Promise<number> {
  for (let started = 0; started < count; ) {
    const batch = Math.min(CONNECT_BATCH, count - started);
    await new Promise<void>((resolve, reject) => {
      let left = batch;
      const deadline = setTimeout(() => reject(new Error(`${left} of ${batch} connections not ready in 20 s`)), 20_000);
      for (let i = 0; i < batch; i++) {
        openOne(port, localAddress, () => {
          ready++;
          if (--left === 0) {
            clearTimeout(deadline);
            resolve();
          }
        });
      }
    });
    started += batch;
  }
  return ready;
}

servePeer(
  { pid: process.pid },
  {
    open,
    window: ({ from, to, nominalMs }) => {
      Object.assign(window, { from, to, nominalMs, pings: 0 });
      window.deviationsPct.length = 0;
    },
    report: () => ({ pings: window.pings, deviationsPct: window.deviationsPct, failed, ready }),
  },
);

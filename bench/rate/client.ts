/**
 * The client side of `pnpm bench:rate`: `connections` connections to one
 * system, each keeping `inFlight` calls outstanding (a new call as soon as one
 * returns), counting the calls that complete in `durationMs` after a warm-up.
 * Each call carries the same 100-byte MessagePack body, encoded per call and
 * decoded from the answer (bare-net only moves the bytes, one write per
 * message).
 */
import net from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { connect } from '@heartwire/client';
import { PayloadCodec } from '@heartwire/core';
import { servePeer } from '../lib/process.js';
import { LengthPrefixed } from './length-prefixed.js';

export interface RunArgs {
  readonly system: 'heartwire' | 'grpc-js' | 'bare-net';
  readonly port: number;
  readonly connections: number;
  readonly inFlight: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface RunResult {
  readonly calls: number;
  readonly seconds: number;
  /** This process's CPU time (user + system) over the counted window, in µs. */
  readonly cpuUs: number;
}

const BODY_BYTES = 100;
const codec = new PayloadCodec();

/** A params value whose MessagePack encoding is exactly 100 bytes. */
function body(): unknown {
  for (let pad = 0; pad < BODY_BYTES; pad++) {
    const value = { id: 123456, op: 'resize', size: [1920, 1080], quality: 0.85, tag: 'x'.repeat(pad) };
    if (codec.encode(value).byteLength === BODY_BYTES) return value;
  }
  throw new Error(`no ${BODY_BYTES}-byte body`);
}

/** Counts completed calls while `counting`; lanes stop issuing calls once `stopped`. */
class Meter {
  counting = false;
  stopped = false;
  calls = 0;
  done(): void {
    if (this.counting) this.calls++;
  }
}

type Lanes = (meter: Meter, args: RunArgs) => Promise<{ run: Promise<unknown>; close(): Promise<void> }>;

const params = body();

const heartwire: Lanes = async (meter, { port, connections, inFlight }) => {
  const clients = await Promise.all(Array.from({ length: connections }, () => connect({ host: '127.0.0.1', port })));
  const lane = async (client: (typeof clients)[number]): Promise<void> => {
    while (!meter.stopped) {
      await client.call('echo', params);
      meter.done();
    }
  };
  const run = Promise.all(clients.flatMap((client) => Array.from({ length: inFlight }, () => lane(client))));
  return { run, close: async () => void (await Promise.all(clients.map((c) => c.close()))) };
};

// grpc-js is loaded only by the process that runs it: loaded at all, it made the heartwire client
// spend about half as much CPU again per call (6.2 against 4.1 µs, measured), whatever it ran.
const grpcJs: Lanes = async (meter, { port, connections, inFlight }) => {
  const grpc = await import('@grpc/grpc-js');
  const { BenchClient } = await import('../lib/grpc.js');
  // A local subchannel pool per client: one TCP connection each, as with the other systems.
  const clients = Array.from(
    { length: connections },
    () => new BenchClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  await Promise.all(
    clients.map((c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())))),
  );
  type Unary = (request: Buffer, callback: (err: grpc.ServiceError | null, response?: Buffer) => void) => void;
  const lane = async (client: grpc.Client): Promise<void> => {
    const call = (client as unknown as { call: Unary }).call.bind(client);
    while (!meter.stopped) {
      const request = codec.encode(params);
      await new Promise<void>((resolve, reject) => {
        call(Buffer.from(request.buffer, request.byteOffset, request.byteLength), (err, response) => {
          if (err) reject(err);
          else {
            codec.decode(response as Buffer);
            resolve();
          }
        });
      });
      meter.done();
    }
  };
  const run = Promise.all(clients.flatMap((client) => Array.from({ length: inFlight }, () => lane(client))));
  return { run, close: async () => clients.forEach((c) => c.close()) };
};

const bareNet: Lanes = async (meter, { port, connections, inFlight }) => {
  const encoded = codec.encode(params);
  const message = Buffer.alloc(4 + encoded.byteLength);
  message.writeUInt32BE(encoded.byteLength, 0);
  message.set(encoded, 4);
  const sockets = await Promise.all(
    Array.from({ length: connections }, async () => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      await once(socket, 'connect');
      return socket;
    }),
  );
  // As a plain client does: each reply read is one call done, and the next call is one write.
  const run = Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          const reader = new LengthPrefixed();
          let outstanding = inFlight;
          socket.on('data', (chunk: Buffer) =>
            reader.push(chunk, () => {
              meter.done();
              if (meter.stopped) {
                if (--outstanding === 0) resolve();
              } else {
                socket.write(message);
              }
            }),
          );
          for (let i = 0; i < inFlight; i++) socket.write(message);
        }),
    ),
  );
  return { run, close: async () => sockets.forEach((s) => s.destroy()) };
};

const systems: Record<RunArgs['system'], Lanes> = { heartwire, 'grpc-js': grpcJs, 'bare-net': bareNet };

async function run(args: RunArgs): Promise<RunResult> {
  const meter = new Meter();
  const lanes = await systems[args.system](meter, args);
  await sleep(args.warmupMs);
  meter.counting = true;
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  await sleep(args.durationMs);
  const calls = meter.calls;
  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  meter.counting = false;
  meter.stopped = true;
  await lanes.run;
  await lanes.close();
  return { calls, seconds, cpuUs: cpu.user + cpu.system };
}

servePeer({}, { run: (args) => run(args as RunArgs) });

/**
 * The server side of `pnpm bench:rate`, one system per process:
 *   heartwire  a heartwire server whose `echo` handler returns its params;
 *   grpc-js    a @grpc/grpc-js server whose unary `Call` decodes the msgpack body and encodes it back;
 *   bare-net   a `net` server that echoes 4-byte length-prefixed messages, one write per message
 *              (as a plain echo server does): the limit, with no protocol and no codec.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { PayloadCodec } from '@heartwire/core';
import { createServer } from '@heartwire/server';
import { servePeer } from '../lib/process.js';
import { LengthPrefixed } from './length-prefixed.js';

const system = process.argv[2];

async function heartwire(): Promise<number> {
  const server = createServer();
  server.handle('echo', (params: unknown) => params);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

// grpc-js is loaded only by its own server process (see client.ts).
async function grpcJs(): Promise<number> {
  const grpc = await import('@grpc/grpc-js');
  const { benchService } = await import('../lib/grpc.js');
  // The same MessagePack codec as heartwire's, so both do the same work per body.
  const codec = new PayloadCodec();
  const server = new grpc.Server();
  server.addService(benchService, {
    call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const body = codec.encode(codec.decode(call.request));
      callback(null, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

async function bareNet(): Promise<number> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    const reader = new LengthPrefixed();
    socket.on('data', (chunk: Buffer) => reader.push(chunk, (message) => socket.write(message)));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

const start = { heartwire, 'grpc-js': grpcJs, 'bare-net': bareNet }[system as string];
if (start === undefined) throw new Error(`usage: server.ts heartwire|grpc-js|bare-net, got ${system}`);
// `cpu`: this process's CPU time so far (user + system, µs), read around each counted window.
servePeer({ port: await start() }, { cpu: () => { const { user, system } = process.cpuUsage(); return user + system; } });

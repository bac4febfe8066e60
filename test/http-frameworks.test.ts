import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type CallContext, type HeartwireServer } from '@heartwire/server';
import { createHttpBridge, type HttpBridge } from '@heartwire/http';
import { call } from '@heartwire/http/client';
import { Curl, HttpEvents } from './harness/http.js';
import { IdleJobs } from './harness/idle-jobs.js';

/*
 * The bridge mounted as a route of the real frameworks, as README.md shows:
 * Express 5 (its listener is an Express handler) and Fastify 5 (the route
 * hijacks the reply and hands over request.raw, reply.raw and the parsed
 * body), Fastify over HTTP/2 too.
 */

const HEARTBEAT_MS = 200;
const SILENT_MS = 1000;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;

const jobs = new IdleJobs();
let hw: HeartwireServer;
let bridge: HttpBridge;
let events: HttpEvents;
let expressServer: Server;
let expressUrl: string;
let fastify: FastifyInstance;
let fastifyUrl: string;
let fastify2: FastifyInstance;
let fastify2Url: string;
const curls: Curl[] = [];

function curl(...args: string[]): Curl {
  const c = new Curl(args);
  curls.push(c);
  return c;
}

function fastifyRoutes(app: FastifyInstance): void {
  app.post('/add', (request, reply) => {
    reply.hijack();
    bridge.serve('add', request.raw, reply.raw, { params: request.body });
  });
  app.get('/idle', (request, reply) => {
    reply.hijack();
    bridge.serve('idle', request.raw, reply.raw);
  });
}

beforeAll(async () => {
  hw = createServer();
  hw.handle('idle', jobs.handler);
  hw.handle('add', async (params: { a: number; b: number }, ctx: CallContext) => {
    ctx.progress('adding');
    await new Promise((resolve) => setTimeout(resolve, 50));
    return params.a + params.b;
  });
  bridge = createHttpBridge(hw, { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS });
  events = new HttpEvents();

  const app = express();
  app.post('/add', express.json(), bridge.listener('add'));
  app.get('/idle', bridge.listener('idle'));
  expressServer = app.listen(0, '127.0.0.1');
  await once(expressServer, 'listening');
  expressUrl = `http://127.0.0.1:${(expressServer.address() as AddressInfo).port}`;

  fastify = Fastify();
  fastifyRoutes(fastify);
  fastifyUrl = await fastify.listen({ port: 0, host: '127.0.0.1' });
  // One type for both instances: the routes use only what HTTP/1.1 and HTTP/2 requests share.
  fastify2 = Fastify({ http2: true }) as unknown as FastifyInstance;
  fastifyRoutes(fastify2);
  fastify2Url = await fastify2.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  for (const c of curls) await c.dispose();
  bridge?.close();
  events?.dispose();
  expressServer?.closeAllConnections();
  expressServer?.close();
  await fastify?.close();
  await fastify2?.close();
  await new Promise<void>((resolve) => hw.close(() => resolve()));
});

async function killedMidJob(args: string[]): Promise<string> {
  const before = jobs.runs.length;
  const c = curl(...args);
  await c.output(/accepted/);
  const run = await jobs.started(before + 1);
  const killedAt = c.kill('SIGKILL');
  const abort = await events.abort((m) => m.reason === run.signal.reason);
  expect(abort.at - killedAt).toBeLessThan(SLACK_MS);
  return abort.reason.code;
}

describe('Express 5', () => {
  it('POST with express.json(): the fetch client gets progress and the result', async () => {
    const progress: unknown[] = [];
    await expect(call(`${expressUrl}/add`, { a: 20, b: 22 }, { onProgress: (d) => progress.push(d) })).resolves.toBe(42);
    expect(progress).toEqual(['adding']);
  });

  it('GET as server-sent events; curl SIGKILLed mid-job: HW_ERR_PEER_CLOSED (or _RESET)', async () => {
    const code = await killedMidJob(['-H', 'accept: text/event-stream', `${expressUrl}/idle`]);
    expect(['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET']).toContain(code);
  });
});

describe('Fastify 5', () => {
  it('POST with Fastify\'s parsed body: the fetch client gets progress and the result', async () => {
    await expect(call(`${fastifyUrl}/add`, { a: 1, b: 2 })).resolves.toBe(3);
  });

  it('curl SIGKILLed mid-job over HTTP/1.1: HW_ERR_PEER_CLOSED (or _RESET)', async () => {
    expect(['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET']).toContain(await killedMidJob([`${fastifyUrl}/idle`]));
  });

  it('with http2: true, curl SIGKILLed mid-job: HW_ERR_PEER_CLOSED (or _RESET)', async () => {
    expect(['HW_ERR_PEER_CLOSED', 'HW_ERR_PEER_RESET']).toContain(await killedMidJob(['--http2-prior-knowledge', `${fastify2Url}/idle`]));
  });

  it('with http2: true, curl frozen (SIGSTOP) mid-job: HW_ERR_PEER_SILENT through PING', async () => {
    const before = jobs.runs.length;
    const c = curl('--http2-prior-knowledge', `${fastify2Url}/idle`);
    await c.output(/accepted/);
    const run = await jobs.started(before + 1);
    const frozenAt = c.kill('SIGSTOP');
    const abort = await events.abort((m) => m.reason === run.signal.reason);
    expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
    expect(abort.at - frozenAt).toBeLessThan(HEARTBEAT_MS + SILENT_MS + SLACK_MS);
    c.kill('SIGCONT');
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { CallContext } from '@heartwire/server';
import { ChildClient } from './harness/child.js';
import { ServerEvents, startServer } from './harness/server.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function spawnClient(port: number, options: Record<string, unknown> = {}): ChildClient {
  const child = new ChildClient(port, options);
  cleanups.push(() => child.dispose());
  return child;
}

const busyWait = (ms: number): void => {
  const until = Date.now() + ms;
  while (Date.now() < until);
};

describe('event-loop blocking', () => {
  it('the early header leaves before a synchronous CPU-bound handler starts its work', async () => {
    const { port, close } = await startServer({}, (server) =>
      server.handle('crunch', (ms: number) => {
        busyWait(ms);
        return 'crunched';
      }),
    );
    cleanups.push(close);
    const child = spawnClient(port);
    await child.waitFor('connected');
    child.send({ cmd: 'call', id: 1, method: 'crunch', params: 800 });
    const result = await child.waitFor('result', (e) => e.id === 1);
    const accepted = await child.waitFor('accepted', (e) => e.id === 1);
    expect(result.value).toBe('crunched');
    // Both times are the client's own clock: the header arrived while the server was still busy.
    expect((result.t as number) - (accepted.t as number)).toBeGreaterThan(600);
  });

  it('a client whose own loop was blocked past its silent bound does not declare a healthy server silent', async () => {
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    let release: (() => void) | undefined;
    const { port, close } = await startServer({ heartbeatMs: 100, silentMs: 10_000 }, (server) => {
      server.handle('wait', (_params: unknown, ctx: CallContext) => {
        return new Promise((resolve, reject) => {
          release = () => resolve('released');
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        });
      });
      server.handle('echo', (value: unknown) => value);
    });
    cleanups.push(close);
    const child = spawnClient(port, { serverSilentMs: 400 });
    await child.waitFor('connected');
    child.send({ cmd: 'call', id: 1, method: 'wait', params: null });
    await child.waitFor('accepted', (e) => e.id === 1);
    // Blocked 1500 ms: the server's heartbeats pile up unread in the client's socket while its
    // 400 ms timer is long overdue. It must read them before it judges.
    child.send({ cmd: 'block', ms: 1500 });
    await child.waitFor('unblocked');
    child.send({ cmd: 'call', id: 2, method: 'echo', params: 'after the block' });
    expect((await child.waitFor('result', (e) => e.id === 2)).value).toBe('after the block');
    release?.();
    expect((await child.waitFor('result', (e) => e.id === 1)).value).toBe('released');
    expect(child.events.filter((e) => e.event === 'error' || e.event === 'closed')).toEqual([]);
    expect(events.aborts).toEqual([]);
  });
});

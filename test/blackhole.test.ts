import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ChildClient } from './harness/child.js';
import { IdleJobs } from './harness/idle-jobs.js';
import { createNetns, netnsUnavailable, type Netns } from './harness/netns.js';
import { ServerEvents, startServer } from './harness/server.js';

/*
 * A real vanished host: the client runs in its own network namespace, joined
 * to ours by a veth pair, and the link is cut while its job runs. No FIN and
 * no RST can arrive, in either direction; the kernel on each side goes on
 * retransmitting for ~15 minutes. Only heartbeats can tell.
 */

const HEARTBEAT_MS = 200;
const SILENT_MS = 800;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;

const unavailable = await netnsUnavailable();
if (unavailable !== undefined) console.warn(`[blackhole] skipped: ${unavailable}`);

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await Promise.resolve()
      .then(cleanup)
      .catch(() => {});
  }
});

async function netns(): Promise<Netns> {
  const ns = await createNetns();
  cleanups.push(() => ns.remove());
  return ns;
}

const title = unavailable === undefined ? 'a client whose host vanishes' : `a client whose host vanishes (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  it('link cut, no FIN, no RST: the server aborts with HW_ERR_PEER_SILENT and the client rejects with HW_ERR_SERVER_SILENT', async () => {
    const ns = await netns();
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const jobs = new IdleJobs();
    const { port, close } = await startServer(
      { heartbeatMs: HEARTBEAT_MS, silentMs: SILENT_MS },
      (server) => server.handle('job', jobs.handler),
      ns.hostAddress,
    );
    cleanups.push(close);
    const child = new ChildClient(port, { host: ns.hostAddress }, { wrap: ns.exec });
    cleanups.push(() => child.dispose());

    child.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await child.waitFor('accepted', (e) => e.id === 1);
    const run = await jobs.started();
    // The connection really crosses the veth, and heartbeats flow over it: the job outlives
    // heartbeatMs + silentMs before the cut (answered PINGs), with no verdict.
    expect(events.closes).toEqual([]);
    await events
      .abort(() => true, HEARTBEAT_MS + SILENT_MS + HEARTBEAT_MS)
      .then(
        () => expect.fail('the job aborted before the link was cut'),
        () => {},
      );
    expect(run.signal.aborted).toBe(false);

    const cutStart = performance.now();
    await ns.cut();
    const cutEnd = performance.now();

    const abort = await events.abort((m) => m.id === 1);
    expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
    expect(abort.remoteAddress).toBe(ns.peerAddress);
    expect((run.signal.reason as { code?: string }).code).toBe('HW_ERR_PEER_SILENT');
    const serverMs = abort.at - cutStart;
    // The next PING goes out within heartbeatMs of the cut and is overdue silentMs later; a PING
    // sent just before the cut may be unanswered only because its PONG was cut off.
    expect(abort.at - cutEnd).toBeGreaterThanOrEqual(SILENT_MS - HEARTBEAT_MS);
    expect(serverMs).toBeLessThan(HEARTBEAT_MS + SILENT_MS + SLACK_MS);
    const closed = await events.close();
    expect(closed.reason?.code).toBe('HW_ERR_PEER_SILENT');

    // The client hears nothing either: its own bound (heartbeatMs + silentMs from WELCOME) runs
    // from the last frame it received, at most one heartbeat before the cut.
    const error = await child.waitFor('error', (e) => e.id === 1);
    expect(error.code).toBe('HW_ERR_SERVER_SILENT');
    const clientMs = (error.t as number) - (performance.timeOrigin + cutStart);
    expect(clientMs).toBeGreaterThanOrEqual(SILENT_MS - 1);
    expect(clientMs).toBeLessThan(HEARTBEAT_MS + SILENT_MS + SLACK_MS);
    expect((await child.waitFor('closed')).code).toBe('HW_ERR_SERVER_SILENT');
    console.log(`[blackhole] link cut → server verdict ${serverMs.toFixed(0)} ms, client verdict ${clientMs.toFixed(0)} ms (H ${HEARTBEAT_MS}, S ${SILENT_MS})`);
  });

  it('an outage shorter than the silent bound is no verdict: TCP retransmits, the job finishes', async () => {
    const silentMs = 3000;
    const outageMs = 500;
    const ns = await netns();
    const events = new ServerEvents();
    cleanups.push(() => events.dispose());
    const jobs = new IdleJobs();
    const { port, close } = await startServer(
      { heartbeatMs: HEARTBEAT_MS, silentMs },
      (server) => server.handle('job', jobs.handler),
      ns.hostAddress,
    );
    cleanups.push(close);
    const child = new ChildClient(port, { host: ns.hostAddress }, { wrap: ns.exec });
    cleanups.push(() => child.dispose());

    child.send({ cmd: 'call', id: 1, method: 'job', params: { ms: 2000 } });
    await jobs.started();
    await ns.cut();
    // The outage itself is what is under test: a timer is its length, not a wait for an event.
    await sleep(outageMs);
    await ns.restore();

    const result = await child.waitFor('result', (e) => e.id === 1);
    expect(result.value).toEqual({ ms: 2000 });
    expect(events.aborts).toEqual([]);
    expect(events.closes).toEqual([]);
  });
});

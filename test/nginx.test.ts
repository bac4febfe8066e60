import { afterEach, describe, expect, it } from 'vitest';
import { ChildClient } from './harness/child.js';
import { IdleJobs } from './harness/idle-jobs.js';
import { nginxUnavailable, startNginx, type Nginx } from './harness/nginx.js';
import { ServerEvents, startServer } from './harness/server.js';

/*
 * A real nginx as a stream (TCP) proxy in front of the server, with
 * `proxy_timeout 2s`: it closes a connection on which no byte went either way
 * for 2 s, as cloud load balancers do after their idle timeout (TCP keepalive
 * probes do not count, data does). Clients are real processes connected to
 * nginx.
 */

const PROXY_TIMEOUT_MS = 2000;
/** Scheduling noise on a busy 2-core machine, never the protocol. */
const SLACK_MS = 1500;

const unavailable = await nginxUnavailable();
if (unavailable !== undefined) console.warn(`[nginx] skipped: ${unavailable}`);

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function nginx(upstreamPort: number): Promise<Nginx> {
  const proxy = await startNginx(upstreamPort, `${PROXY_TIMEOUT_MS}ms`);
  cleanups.push(() => proxy.stop());
  return proxy;
}

function child(port: number, options: Record<string, unknown> = {}): ChildClient {
  const client = new ChildClient(port, options);
  cleanups.push(() => client.dispose());
  return client;
}

async function setup(options: Parameters<typeof startServer>[0]): Promise<{ proxy: Nginx; jobs: IdleJobs; events: ServerEvents }> {
  const events = new ServerEvents();
  cleanups.push(() => events.dispose());
  const jobs = new IdleJobs();
  const { port, close } = await startServer(options, (server) => server.handle('job', jobs.handler));
  cleanups.push(close);
  return { proxy: await nginx(port), jobs, events };
}

const title = unavailable === undefined ? 'behind a real nginx stream proxy' : `behind a real nginx stream proxy (skipped: ${unavailable})`;

describe.skipIf(unavailable !== undefined)(title, () => {
  it('a 6 s job survives the 2 s idle cut because of heartbeats; the same job without heartbeats is cut at ~2 s', async () => {
    const jobMs = 6000;
    // The server's own interval is a minute: a connection that asks for nothing gets no heartbeat
    // during the job. A client may ask for more frequent ones (HELLO heartbeatMs, clamped to
    // [minHeartbeatMs, heartbeatMs]): the one that asks for 500 ms gets them. Same server, same
    // proxy, same job; the heartbeats are the only difference. silentMs is long too: a client that
    // sent nothing for silentMs / 2 sends a PING of its own (PROTOCOL.md §5), which would keep the
    // idle connection alive as well.
    const { proxy, jobs, events } = await setup({ heartbeatMs: 60_000, minHeartbeatMs: 100, silentMs: 20_000 });
    const withHeartbeats = child(proxy.port, { heartbeatMs: 500 });
    const without = child(proxy.port);
    expect(((await withHeartbeats.waitFor('connected')).welcome as { heartbeatMs: number }).heartbeatMs).toBe(500);
    expect(((await without.waitFor('connected')).welcome as { heartbeatMs: number }).heartbeatMs).toBe(60_000);

    withHeartbeats.send({ cmd: 'call', id: 1, method: 'job', params: { ms: jobMs } });
    without.send({ cmd: 'call', id: 1, method: 'job', params: { ms: jobMs } });
    const [first, second] = [await jobs.started(1), await jobs.started(2)];
    await Promise.all([withHeartbeats.waitFor('accepted'), without.waitFor('accepted')]);

    // Without heartbeats: nothing crosses the proxy after ACCEPTED, and nginx closes both sides
    // (a FIN to the server) once proxy_timeout has passed.
    const cut = await events.abort();
    expect(cut.reason.code).toBe('HW_ERR_PEER_CLOSED');
    const cutRuns = [first, second].filter((r) => r.abortedAt !== undefined);
    expect(cutRuns).toHaveLength(1);
    // Its ACCEPTED, the last byte through the proxy, went out just before the job started.
    const idleMs = cut.at - (cutRuns[0] as { startedAt: number }).startedAt;
    expect(idleMs).toBeGreaterThan(PROXY_TIMEOUT_MS - 300);
    expect(idleMs).toBeLessThan(PROXY_TIMEOUT_MS + SLACK_MS);
    const lost = await without.waitFor('error', (e) => e.id === 1);
    expect(lost.code).toBe('HW_ERR_CONNECTION_LOST');
    expect(proxy.errorLog()).toMatch(/timed out/);

    // With heartbeats: a PING and its PONG every 500 ms keep the flow alive past three idle timeouts.
    const result = await withHeartbeats.waitFor('result', (e) => e.id === 1);
    expect(result.value).toEqual({ ms: jobMs });
    const accepted = await withHeartbeats.waitFor('accepted', (e) => e.id === 1);
    expect((result.t as number) - (accepted.t as number)).toBeGreaterThanOrEqual(jobMs - 50);
    expect(events.aborts).toHaveLength(1);
    console.log(`[nginx] without heartbeats the job was cut after ${idleMs.toFixed(0)} ms; with heartbeats it ran ${jobMs} ms and returned`);
  });

  it('a client killed behind the proxy: its job is aborted on the server, through the proxy', async () => {
    const { proxy, jobs, events } = await setup({ heartbeatMs: 5000, silentMs: 5000 });
    const client = child(proxy.port);
    client.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await client.waitFor('accepted', (e) => e.id === 1);
    const run = await jobs.started();

    const killedAt = client.kill('SIGKILL');
    const abort = await events.abort((m) => m.id === run.id);
    // nginx passes the dead client's FIN (or RST) on as a FIN of its own.
    expect(abort.reason.code).toBe('HW_ERR_PEER_CLOSED');
    const ms = abort.at - killedAt;
    // Well inside the 2 s idle cut and the 5 s heartbeat: it came from the kill.
    expect(ms).toBeLessThan(PROXY_TIMEOUT_MS - 500);
    console.log(`[nginx] killed client behind the proxy → job aborted in ${ms.toFixed(1)} ms`);
  });

  it('a frozen client behind the proxy: the proxy stays up, the heartbeat goes unanswered → HW_ERR_PEER_SILENT', async () => {
    const heartbeatMs = 200;
    const silentMs = 600;
    const { proxy, jobs, events } = await setup({ heartbeatMs, silentMs });
    const client = child(proxy.port);
    client.send({ cmd: 'call', id: 1, method: 'job', params: null });
    await client.waitFor('accepted', (e) => e.id === 1);
    const run = await jobs.started();

    const frozenAt = client.kill('SIGSTOP');
    const abort = await events.abort((m) => m.id === run.id);
    expect(abort.reason.code).toBe('HW_ERR_PEER_SILENT');
    const ms = abort.at - frozenAt;
    expect(ms).toBeLessThan(heartbeatMs + silentMs + SLACK_MS);
    console.log(`[nginx] frozen client behind the proxy → HW_ERR_PEER_SILENT in ${ms.toFixed(0)} ms`);
  });
});

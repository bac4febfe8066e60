/**
 * `pnpm bench:scale`: 10,000 connections, each with a job in flight that
 * outlasts the run (one that reads nothing of its context; then, for memory
 * only, one that reads ctx.signal), heartbeats every second; beside the limit, a bare `net`
 * server and client exchanging a 1-byte ping and pong on as many sockets at
 * the same rate, measured the same way in the same run. Servers measure
 * themselves (CPU by process.cpuUsage over the window, RSS after a full GC
 * over their idle baseline); load generators run in their own processes, at
 * most 5,000 sockets each, each from its own 127.0.0.x source address, and
 * report what they saw of the heartbeats. Then one client process holding one
 * connection is frozen (SIGSTOP) and must be caught within its bound, and the
 * processes holding 1,000 clients are SIGKILLed at once: the time until all
 * their jobs were aborted comes from the server's own timestamps, on its
 * clock mapped onto ours by an echo.
 *
 * Env: SCALE_CONNECTIONS (10000), SCALE_DEATHS (1000), SCALE_HEARTBEAT_MS
 * (1000), SCALE_WINDOW_MS (10000), SCALE_NODE_ARGS (extra node flags for the
 * servers), SCALE_CPU_PROF (a directory: each server profiles its measurement
 * window into it), SCALE_HEAP_SNAPSHOT (a directory: servers write a heap
 * snapshot into it each time they measure their memory).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_SERVER_OPTIONS } from '@heartwire/server';
import { intEnv } from './lib/env.js';
import { PeerProcess } from './lib/process.js';
import { header, readResults, table, writeResults } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import { sharedNow, until } from './scale/clock.js';

const connections = intEnv('SCALE_CONNECTIONS', 10_000);
const deaths = intEnv('SCALE_DEATHS', 1000);
const heartbeatMs = intEnv('SCALE_HEARTBEAT_MS', 1000);
const windowMs = intEnv('SCALE_WINDOW_MS', 10_000);
const serverNodeArgs = ['--expose-gc', ...(process.env.SCALE_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
const silentBoundMs = heartbeatMs + DEFAULT_SERVER_OPTIONS.silentMs;
/** Sockets per load generator process: a quarter of this machine's 20,000 open files per process. */
const PER_PROCESS = 5000;
/** Processes the deaths are spread over ("the processes holding 1,000 clients"). */
const DEATH_PROCESSES = 2;
if (!(deaths + 1 < connections)) throw new Error('SCALE_DEATHS + 1 must be below SCALE_CONNECTIONS');

const SILENT_ADDRESS = '127.0.0.2';
const DEATHS_ADDRESS = '127.0.0.3';

interface Group {
  readonly count: number;
  readonly address: string;
}

/** Splits `count` sockets into `n` processes (at most PER_PROCESS each), numbering source addresses from 127.0.0.`first`. */
function groups(count: number, first: number, n = Math.ceil(count / PER_PROCESS)): Group[] {
  return Array.from({ length: n }, (_, i) => ({
    count: Math.floor(count / n) + (i < count % n ? 1 : 0),
    address: `127.0.0.${first + i}`,
  }));
}

interface Memory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly spaces: Record<string, number>;
  readonly external: number;
}

/** Bytes per connection that `loaded` holds over `idle`, in total and by part. */
function perConnection(idle: Memory, loaded: Memory): { rss: number; detail: string } {
  const per = (a: number, b: number) => Math.round((b - a) / connections);
  const spaces = Object.keys(loaded.spaces)
    .map((name) => [name, per(idle.spaces[name] ?? 0, loaded.spaces[name] ?? 0)] as const)
    .filter(([, bytes]) => bytes !== 0)
    .map(([name, bytes]) => `${name} ${bytes}`)
    .join(', ');
  return {
    rss: per(idle.rss, loaded.rss),
    detail: `heap used ${per(idle.heapUsed, loaded.heapUsed)}, external ${per(idle.external, loaded.external)}; physical: ${spaces}`,
  };
}

async function startServer(mode: 'heartwire' | 'bare', job = 'waits'): Promise<{ server: PeerProcess; port: number; baseline: Memory }> {
  const { peer, info } = await PeerProcess.start(new URL('./scale/server.ts', import.meta.url), [mode, String(heartbeatMs), job], {
    name: `${mode} server`,
    nodeArgs: serverNodeArgs,
  });
  return { server: peer, port: info.port as number, baseline: await peer.request<Memory>('rss') };
}

/** Starts one load generator per group and opens its connections, one process after the other. */
async function startLoads(mode: 'heartwire' | 'bare', port: number, list: readonly Group[]): Promise<PeerProcess[]> {
  const loads: PeerProcess[] = [];
  for (const group of list) {
    const { peer } = await PeerProcess.start(new URL('./scale/load.ts', import.meta.url), [mode], {
      name: `${mode} load ×${group.count} from ${group.address}`,
    });
    loads.push(peer);
    await peer.request('open', { port, count: group.count, localAddress: group.address });
  }
  return loads;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** One measurement window: the server's CPU, and the pings and intervals the load generators saw. */
async function measure(server: PeerProcess, loads: readonly PeerProcess[]) {
  const from = sharedNow() + 500;
  const to = from + windowMs;
  await Promise.all(loads.map((l) => l.request('window', { from, to, nominalMs: heartbeatMs })));
  const { cpuUs, wallMs } = await server.request<{ cpuUs: number; wallMs: number }>('cpu', { from, to });
  await until(to + 100);
  const reports = await Promise.all(loads.map((l) => l.request<{ pings: number; deviationsPct: number[]; failed: number }>('report')));
  const pings = reports.reduce((n, r) => n + r.pings, 0);
  const failed = reports.reduce((n, r) => n + r.failed, 0);
  if (failed > 0) throw new Error(`${failed} connections failed or saw an unexpected frame during the run`);
  return {
    cpuShare: cpuUs / (wallMs * 1000),
    cpuUsPerPing: cpuUs / pings,
    pingsPerS: pings / (wallMs / 1000),
    p99DeviationPct: percentile(reports.flatMap((r) => r.deviationsPct), 99),
  };
}

async function connectionsRunning(server: PeerProcess, running: boolean): Promise<void> {
  await waitFor(`${connections} connections${running ? ' with jobs running' : ''}`, 60_000, async () => {
    const stats = await server.request<{ connections: number; running: number }>('stats');
    return (running ? stats.running : stats.connections) >= connections ? true : undefined;
  });
}

async function stopAll(peers: readonly PeerProcess[]): Promise<void> {
  await Promise.all(peers.map((p) => p.stop()));
}

// ---- the limit: bare 1-byte ping-pong --------------------------------------

console.error(`bare: ${connections} sockets, a 1-byte ping each per ${heartbeatMs} ms`);
const bareServer = await startServer('bare');
const bareLoads = await startLoads('bare', bareServer.port, groups(connections, 12));
await connectionsRunning(bareServer.server, false);
await sleep(2 * heartbeatMs);
const bareMemory = perConnection(bareServer.baseline, await bareServer.server.request<Memory>('rss'));
await sleep(heartbeatMs);
const bare = await measure(bareServer.server, bareLoads);
await stopAll([...bareLoads, bareServer.server]);
console.error(`bare: ${round(bare.cpuUsPerPing)} µs per ping, ${bareMemory.rss} B per socket (${bareMemory.detail})`);

// ---- heartwire --------------------------------------------------------------

console.error(`heartwire: ${connections} connections, one job each, heartbeat ${heartbeatMs} ms`);
const hw = await startServer('heartwire');
const silentLoad = (await startLoads('heartwire', hw.port, [{ count: 1, address: SILENT_ADDRESS }]))[0]!;
const deathLoads = await startLoads(
  'heartwire',
  hw.port,
  groups(deaths, 0, Math.max(DEATH_PROCESSES, Math.ceil(deaths / PER_PROCESS))).map((g) => ({ ...g, address: DEATHS_ADDRESS })),
);
const liveLoads = await startLoads('heartwire', hw.port, groups(connections - deaths - 1, 4));
const allLoads = [silentLoad, ...deathLoads, ...liveLoads];
await connectionsRunning(hw.server, true);
await sleep(2 * heartbeatMs);
const hwMemory = perConnection(hw.baseline, await hw.server.request<Memory>('rss'));
await sleep(heartbeatMs);
const heartwire = await measure(hw.server, allLoads);
console.error(`heartwire: ${round(heartwire.cpuUsPerPing)} µs per heartbeat, ${hwMemory.rss} B per connection (${hwMemory.detail})`);

interface Abort {
  readonly at: number;
  readonly code: string;
}

/**
 * The server's shared clock minus ours, from the IPC echo with the shortest
 * round trip: timeOrigin + now alone can disagree across processes by a few
 * ms on a loaded machine.
 */
async function clockOffset(peer: PeerProcess): Promise<number> {
  let best = { rtt: Infinity, offset: 0 };
  for (let i = 0; i < 10; i++) {
    const sent = sharedNow();
    const theirs = await peer.request<number>('now');
    const received = sharedNow();
    if (received - sent < best.rtt) best = { rtt: received - sent, offset: theirs - (sent + received) / 2 };
  }
  return best.offset;
}
const offset = await clockOffset(hw.server);
const aborts = (address: string) => hw.server.request<Abort[]>('aborts', { address });

console.error('heartwire: freezing the process that holds one connection (SIGSTOP)');
const stoppedAt = sharedNow();
silentLoad.signal('SIGSTOP');
const silentAbort = await waitFor('the silent verdict', silentBoundMs + 10_000, async () => (await aborts(SILENT_ADDRESS))[0]);
if (silentAbort.code !== 'HW_ERR_PEER_SILENT') throw new Error(`the frozen client's job was aborted with ${silentAbort.code}`);
const silentDetectedMs = silentAbort.at - (stoppedAt + offset);

console.error(`heartwire: killing ${deathLoads.length} processes holding ${deaths} clients (SIGKILL)`);
const killedAt = sharedNow();
for (const load of deathLoads) load.signal('SIGKILL');
const deathAborts = await waitFor(`${deaths} aborted jobs`, 20_000, async () => {
  const list = await aborts(DEATHS_ADDRESS);
  return list.length >= deaths ? list : undefined;
});
const allAbortedMs = Math.max(...deathAborts.map((a) => a.at)) - (killedAt + offset);
const deathCodes = [...new Set(deathAborts.map((a) => a.code))].join(', ');
silentLoad.signal('SIGKILL');
await stopAll([...allLoads, hw.server]);

// ---- heartwire, jobs that read ctx.signal: memory only -------------------------

console.error(`heartwire: ${connections} connections, one job each that reads ctx.signal and listens for its abort`);
const hwSignal = await startServer('heartwire', 'signal');
const signalLoads = await startLoads('heartwire', hwSignal.port, groups(connections, 4));
await connectionsRunning(hwSignal.server, true);
await sleep(2 * heartbeatMs);
const signalMemory = perConnection(hwSignal.baseline, await hwSignal.server.request<Memory>('rss'));
await stopAll([...signalLoads, hwSignal.server]);
console.error(`heartwire, jobs reading ctx.signal: ${signalMemory.rss} B per connection (${signalMemory.detail})`);

// ---- results ----------------------------------------------------------------

const results = {
  ...header(),
  connections,
  heartbeat_ms: heartbeatMs,
  cpu_share_of_core: round(heartwire.cpuShare, 4),
  cpu_us_per_heartbeat: round(heartwire.cpuUsPerPing),
  bare_cpu_us_per_ping: round(bare.cpuUsPerPing),
  rss_per_connection_bytes: hwMemory.rss,
  rss_per_connection_signal_bytes: signalMemory.rss,
  bare_rss_per_socket_bytes: bareMemory.rss,
  heartbeat_interval_p99_deviation_pct: round(heartwire.p99DeviationPct),
  silent_detected_ms: Math.round(silentDetectedMs),
  deaths,
  all_aborted_ms: round(allAbortedMs, 1),
};
// One entry per Node major, so runs on Node 20 and Node 24 sit side by side.
const nodeKey = `node${process.versions.node.split('.')[0]}`;
const otherNodes = Object.entries(readResults('scale')).filter(([key]) => /^node\d+$/.test(key) && key !== nodeKey);
const file = writeResults('scale', { ...Object.fromEntries(otherNodes), [nodeKey]: results });

console.log(`\n${connections} heartbeating connections, ${results.date}, ${results.machine}, Node ${results.node}\n`);
console.log(
  table(
    ['', 'heartwire', 'bare ping-pong', 'heartwire ÷ bare'],
    [
      ['CPU, share of one core', round(heartwire.cpuShare, 3), round(bare.cpuShare, 3), round(heartwire.cpuShare / bare.cpuShare, 2)],
      ['CPU µs per heartbeat round trip', results.cpu_us_per_heartbeat, results.bare_cpu_us_per_ping, round(heartwire.cpuUsPerPing / bare.cpuUsPerPing, 2)],
      ['round trips per s', Math.round(heartwire.pingsPerS), Math.round(bare.pingsPerS), ''],
      ['RSS per connection, bytes', results.rss_per_connection_bytes, results.bare_rss_per_socket_bytes, `+${results.rss_per_connection_bytes - results.bare_rss_per_socket_bytes} B`],
      [
        '… with a job reading ctx.signal',
        results.rss_per_connection_signal_bytes,
        results.bare_rss_per_socket_bytes,
        `+${results.rss_per_connection_signal_bytes - results.bare_rss_per_socket_bytes} B`,
      ],
      ['heartbeat interval, p99 deviation', `${results.heartbeat_interval_p99_deviation_pct} %`, `${round(bare.p99DeviationPct)} %`, ''],
    ],
  ),
);
console.log(`\nfrozen client (SIGSTOP) caught after ${results.silent_detected_ms} ms (bound: heartbeatMs + silentMs = ${silentBoundMs} ms)`);
console.log(`${deaths} clients killed at once (SIGKILL, ${deathLoads.length} processes): all jobs aborted after ${results.all_aborted_ms} ms (${deathCodes})`);
console.log(`(server timestamps mapped onto this process's clock by an IPC echo: offset ${round(offset, 3)} ms)`);
console.log(`\nwrote ${file}`);

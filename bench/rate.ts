/**
 * `pnpm bench:rate`: short calls per second, heartwire beside @grpc/grpc-js
 * (unary) and the limit, a bare `net` length-prefixed echo. One connection
 * with 64 calls in flight, then 16 connections × 64; 100-byte MessagePack
 * bodies; client and server in separate processes; each figure is the median
 * (and spread) of REPS runs of DURATION_MS after a WARMUP_MS warm-up. The
 * systems take turns within each repetition, so a noisy neighbour hits all.
 *
 * Env: RATE_REPS (5), RATE_DURATION_MS (5000), RATE_WARMUP_MS (1000),
 * RATE_SYSTEMS (comma list), RATE_SHAPES ("1x64,16x64"), RATE_NODE_ARGS
 * (extra node flags for every peer, e.g. "--cpu-prof --cpu-prof-dir=prof").
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { intEnv, listEnv } from './lib/env.js';
import { header, table, writeResults } from './lib/report.js';
import { PeerProcess } from './lib/process.js';
import { median, round } from './lib/stats.js';
import type { RunArgs, RunResult } from './rate/client.js';

type System = RunArgs['system'];
const ALL_SYSTEMS: readonly System[] = ['heartwire', 'grpc-js', 'bare-net'];

const reps = intEnv('RATE_REPS', 5);
const durationMs = intEnv('RATE_DURATION_MS', 5000);
const warmupMs = intEnv('RATE_WARMUP_MS', 1000);
const systems = listEnv('RATE_SYSTEMS', ALL_SYSTEMS);
const shapes = (process.env.RATE_SHAPES ?? '1x64,16x64').split(',').map((s) => {
  const [connections, inFlight] = s.split('x').map(Number);
  return { connections: connections as number, inFlight: inFlight as number };
});
const nodeArgs = process.env.RATE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

const servers = new Map<System, { peer: PeerProcess; port: number }>();
for (const system of systems) {
  const { peer, info } = await PeerProcess.start(new URL('./rate/server.ts', import.meta.url), [system], {
    name: `${system} server`,
    nodeArgs,
    compiled: true,
  });
  servers.set(system, { peer, port: info.port as number });
}

const samples = new Map<string, number[]>();
const cpuSamples = new Map<string, { server: number; client: number }[]>();
const key = (system: System, connections: number, inFlight: number) => `${system} ${connections}x${inFlight}`;
for (let rep = 1; rep <= reps; rep++) {
  for (const { connections, inFlight } of shapes) {
    for (const system of systems) {
      const { peer } = await PeerProcess.start(new URL('./rate/client.ts', import.meta.url), [], {
        name: `${system} client`,
        nodeArgs,
        compiled: true,
      });
      const args: RunArgs = { system, port: servers.get(system)!.port, connections, inFlight, warmupMs, durationMs };
      const server = servers.get(system)!.peer;
      const running = peer.request<RunResult>('run', args as unknown as Record<string, unknown>);
      // The server's CPU over about the client's counted window (an IPC round trip off at each end).
      await sleep(warmupMs);
      const serverCpuAtStart = await server.request<number>('cpu');
      await sleep(durationMs);
      const serverCpuUs = (await server.request<number>('cpu')) - serverCpuAtStart;
      const result = await running;
      await peer.stop();
      const rate = result.calls / result.seconds;
      const k = key(system, connections, inFlight);
      samples.set(k, [...(samples.get(k) ?? []), rate]);
      cpuSamples.set(k, [...(cpuSamples.get(k) ?? []), { server: serverCpuUs / result.calls, client: result.cpuUs / result.calls }]);
      console.error(
        `rep ${rep}/${reps}  ${k.padEnd(20)} ${Math.round(rate)} calls/s, CPU per call: server ${round(serverCpuUs / result.calls, 2)} µs, client ${round(result.cpuUs / result.calls, 2)} µs`,
      );
    }
  }
}
for (const { peer } of servers.values()) await peer.stop();

const rows = shapes.flatMap(({ connections, inFlight }) =>
  systems.map((system) => {
    const s = samples.get(key(system, connections, inFlight))!;
    return {
      system,
      connections,
      in_flight: inFlight,
      calls_per_s_median: Math.round(median(s)),
      calls_per_s_min: Math.round(Math.min(...s)),
      calls_per_s_max: Math.round(Math.max(...s)),
      server_cpu_us_per_call_median: round(median(cpuSamples.get(key(system, connections, inFlight))!.map((c) => c.server)), 2),
      client_cpu_us_per_call_median: round(median(cpuSamples.get(key(system, connections, inFlight))!.map((c) => c.client)), 2),
    };
  }),
);

const results = { ...header(), rows };
const file = writeResults('rate', results);

const ratio = (row: (typeof rows)[number], other: System): number | string => {
  const base = rows.find((r) => r.system === other && r.connections === row.connections && r.in_flight === row.in_flight);
  return base === undefined || row.system === other ? '' : round(row.calls_per_s_median / base.calls_per_s_median, 2);
};
console.log(`\nCall rate, ${results.date}, ${results.machine}, Node ${results.node}; ${reps} × ${durationMs / 1000} s each\n`);
console.log(
  table(
    ['system', 'connections × in flight', 'calls/s (median)', 'min', 'max', '× grpc-js', '× bare-net', 'server CPU µs/call', 'client CPU µs/call'],
    rows.map((r) => [
      r.system,
      `${r.connections} × ${r.in_flight}`,
      r.calls_per_s_median,
      r.calls_per_s_min,
      r.calls_per_s_max,
      ratio(r, 'grpc-js'),
      ratio(r, 'bare-net'),
      r.server_cpu_us_per_call_median,
      r.client_cpu_us_per_call_median,
    ]),
  ),
);
console.log(`\nwrote ${file}`);

/**
 * The soak, shared by the suite (test/soak.test.ts, short) and `pnpm soak`
 * (test/soak/long.ts, 100,000 calls). A real server runs in this process;
 * clients run in child processes (test/soak/client.mjs), each a
 * reconnecting client with many calls in flight. Some calls are cancelled by
 * their caller; some clients are killed (SIGKILL) or frozen (SIGSTOP, then
 * SIGCONT) at random moments, with calls in flight. Calls a killed client
 * never issued go to the next client, so every call is issued exactly once.
 *
 * What must hold at the end:
 * - every call issued by a client that lived ended with exactly one report:
 *   a correct result or a coded error (none lost, none twice, none wrong);
 * - on the server, no call ran twice, every call that started ended, and
 *   what each client reported matches what the server did;
 * - no job left running (the server's counter is back to 0), no connection
 *   open, and open handles back to what they were before the first client;
 * - heap, measured after a full GC, grew less than `maxHeapGrowth` from the
 *   first quarter of the calls to the last.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createServer, type CallContext } from '@heartwire/server';

export interface SoakOptions {
  /** Calls measured. */
  readonly calls: number;
  /**
   * Calls before those, not in the heap measure, run by `clients` clients at
   * once, one of them killed and one frozen: every path (cancel, kill,
   * freeze, reset, reconnect) has run and the process is at its steady load
   * before the first heap sample. All the other rules hold for them too.
   */
  readonly warmupCalls: number;
  /** Calls given to each client process. */
  readonly callsPerClient: number;
  /** Client processes alive at once. */
  readonly clients: number;
  /** Calls in flight per client. */
  readonly concurrency: number;
  /** Share of calls their caller cancels at a random moment. */
  readonly cancelRate: number;
  /** Share of client processes killed with SIGKILL at a random moment. */
  readonly killRate: number;
  /** Share of client processes frozen with SIGSTOP at a random moment, past the server's silent bound, then resumed. */
  readonly freezeRate: number;
  /** Heap growth allowed from the first quarter of the calls to the last (0.05: 5 %). */
  readonly maxHeapGrowth: number;
  readonly seed: number;
  readonly log?: (line: string) => void;
}

export interface SoakReport {
  readonly calls: number;
  readonly elapsedMs: number;
  readonly clientsSpawned: number;
  readonly clientsKilled: number;
  readonly clientsFrozen: number;
  /** Reports by code: `ok`, `HW_ERR_ABORTED`, `HW_ERR_HANDLER`, … */
  readonly outcomes: Record<string, number>;
  /** Calls in flight when their client was killed (they have no report: the server's records must account for them). */
  readonly lostWithClient: number;
  /** Share of calls cancelled, or in flight on a client killed or frozen. */
  readonly faultShare: number;
  readonly heap: { readonly firstQuarterMiB: number; readonly lastQuarterMiB: number; readonly growth: number; readonly samplesMiB: number[] };
  /** Every broken rule found; empty when the soak passed. */
  readonly violations: string[];
}

/** Server-side record of each call, by id: how often its handler started, and how it ended. */
const enum End {
  None = 0,
  Result = 1,
  Error = 2,
  Aborted = 3,
}

const SERVER = { heartbeatMs: 100, silentMs: 400, stallMs: 1000 };

/** A full GC, for heap samples: `--expose-gc` set at run time. */
function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const began = performance.now();
  const violations: string[] = [];
  const violation = (message: string): void => {
    if (violations.length < 50) violations.push(message);
  };
  const gc = gcFunction();
  let random = options.seed >>> 0;
  const rand = (): number => {
    random = (Math.imul(random, 1_103_515_245) + 12_345) >>> 0;
    return random / 4_294_967_296;
  };

  // Ledgers: preallocated, so the accounting itself does not grow the heap.
  const n = options.warmupCalls + options.calls;
  const starts = new Uint8Array(n);
  const ends = new Uint8Array(n);
  const endKind = new Uint8Array(n);
  const issuedBy = new Int32Array(n).fill(-1);
  const reports = new Uint8Array(n);
  const reportCode = new Uint8Array(n);
  const codes: string[] = [];
  const codeIndex = new Map<string, number>();
  let running = 0;

  const server = createServer({ ...SERVER, maxConnections: options.clients * 2 + 4 });
  server.handle('job', async (params: { id: number; work: number; fail: boolean }, ctx: CallContext) => {
    const { id } = params;
    starts[id] = (starts[id] as number) + 1;
    running++;
    let kind = End.Error;
    try {
      // The work, in slices that yield, with a progress frame between them.
      for (let done = 0; done < params.work; done += 4) {
        await sleep(Math.min(4, params.work - done), undefined, { signal: ctx.signal });
        ctx.progress(done);
      }
      if (params.fail) throw new Error('the job failed, as asked');
      kind = End.Result;
      return { id, check: id * 7 + 3 };
    } catch (err) {
      kind = ctx.signal.aborted ? End.Aborted : End.Error;
      throw err;
    } finally {
      running--;
      ends[id] = (ends[id] as number) + 1;
      endKind[id] = kind;
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  // Everything that keeps the loop alive now, before the first client: all that may be left at the end.
  const baseline = process.getActiveResourcesInfo();

  // Heap samples after a full GC, every 1/40 of the measured calls reported.
  const heapSamples: number[] = [];
  const sampleEvery = Math.max(1, Math.floor(options.calls / 40));
  let reported = 0;
  let measuring = false;
  let measured = 0;

  // Ids not given out yet: a cursor, not an array of n ids (re-allocating one would itself grow the heap);
  // ids a killed client never issued wait in `requeued`, and go first.
  let cursor = 0;
  const requeued: number[] = [];
  const take = (count: number): number[] => {
    const ids = requeued.splice(0, count);
    while (ids.length < count && cursor < n) ids.push(cursor++);
    return ids;
  };
  let clientsSpawned = 0;
  let clientsKilled = 0;
  let clientsFrozen = 0;
  let lostWithClient = 0;
  let inFlightAtFault = 0;
  const fixture = fileURLToPath(new URL('./client.mjs', import.meta.url));

  let clientsRunning = 0;
  let signalClientEnded!: () => void;
  let clientEnded = new Promise<void>((resolve) => {
    signalClientEnded = resolve;
  });
  /** Runs one client process over a batch of ids; resolves when it is gone. Its fate is drawn unless given. */
  const runClient = async (index: number, ids: number[], given?: 'kill' | 'freeze' | 'none'): Promise<void> => {
    clientsRunning++;
    try {
      await runClientProcess(index, ids, given);
    } finally {
      clientsRunning--;
      signalClientEnded();
      clientEnded = new Promise<void>((resolve) => {
        signalClientEnded = resolve;
      });
    }
  };
  const runClientProcess = async (index: number, ids: number[], given?: 'kill' | 'freeze' | 'none'): Promise<void> => {
    const child: ChildProcess = spawn(
      process.execPath,
      [fixture, JSON.stringify({ port, concurrency: options.concurrency, cancelRate: options.cancelRate, seed: options.seed * 7919 + index })],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const fate = rand();
    const kill = given === undefined ? fate < options.killRate : given === 'kill';
    const freeze = given === undefined ? !kill && fate < options.killRate + options.freezeRate : given === 'freeze';
    // The random moment: after this many of its calls reported.
    const faultAfter = Math.floor(ids.length * (0.1 + 0.8 * rand()));
    let mine = 0;
    let done = false;
    const inFlight = new Set<number>();
    let faulted = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'done') {
        done = true;
        return;
      }
      const [what, idText, code] = line.split(' ');
      const id = Number(idText);
      if (!(id >= 0 && id < n)) return; // a line cut by SIGKILL
      if (what === 's') {
        if (issuedBy[id] !== -1) violation(`call ${id} issued twice`);
        issuedBy[id] = index;
        inFlight.add(id);
        return;
      }
      if (what !== 'r' || code === undefined) return;
      inFlight.delete(id);
      reports[id] = (reports[id] as number) + 1;
      if (reports[id] === 2) violation(`call ${id} reported twice`);
      let c = codeIndex.get(code);
      if (c === undefined) {
        c = codes.length;
        codes.push(code);
        codeIndex.set(code, c);
      }
      reportCode[id] = c;
      reported++;
      mine++;
      if (measuring && ++measured % sampleEvery === 0) {
        gc();
        heapSamples.push(process.memoryUsage().heapUsed);
      }
      if (!faulted && (kill || freeze) && mine >= faultAfter) {
        faulted = true;
        inFlightAtFault += inFlight.size;
        if (kill) {
          clientsKilled++;
          child.kill('SIGKILL');
        } else {
          clientsFrozen++;
          child.kill('SIGSTOP');
          // Frozen past the server's silent bound, so it gives up on the client; then thawed.
          setTimeout(() => child.kill('SIGCONT'), SERVER.heartbeatMs + SERVER.silentMs + 200 + Math.floor(rand() * 800));
        }
      }
    });
    child.stdin!.end(`${ids.join(' ')}\n`);
    const [code, signal] = await exited;
    if (signal === 'SIGKILL') {
      // Calls it never issued go to the next client; those in flight died with it.
      lostWithClient += inFlight.size;
      for (const id of ids) if (issuedBy[id] === -1) requeued.push(id);
      return;
    }
    if (code !== 0 || !done) violation(`client ${index} exited with ${code ?? signal} before it was done`);
    for (const id of ids) if (reports[id] !== 1) violation(`call ${id} of client ${index} was reported ${reports[id]} times`);
  };

  // The warm-up runs as many clients at once as the soak will (one killed, one frozen, the rest left alone),
  // so the process reaches its steady state before the first sample.
  const share = Math.ceil(options.warmupCalls / options.clients);
  const warmup = take(options.warmupCalls);
  await Promise.all(
    Array.from({ length: options.clients }, (_, i) =>
      runClient(clientsSpawned++, warmup.slice(i * share, (i + 1) * share), i === 0 ? 'kill' : i === 1 ? 'freeze' : 'none'),
    ),
  );
  log(`  warm-up done: ${reported} calls reported; measuring from here`);
  measuring = true;
  const lanes = Array.from({ length: options.clients }, async () => {
    for (;;) {
      const ids = take(options.callsPerClient);
      if (ids.length === 0) {
        // A client still running may yet be killed and hand back ids it never issued.
        if (clientsRunning === 0) return;
        await clientEnded;
        continue;
      }
      const index = clientsSpawned++;
      await runClient(index, ids);
      if (index % 10 === 9) log(`  ${reported} of ${n} calls reported, ${clientsSpawned} clients so far (${((performance.now() - began) / 1000).toFixed(0)} s)`);
    }
  });
  await Promise.all(lanes);

  // The server side: nothing running, every connection gone, handles back to the baseline.
  const settleBy = performance.now() + 10_000;
  while ((running !== 0 || server.connectionCount !== 0) && performance.now() < settleBy) await sleep(20);
  if (running !== 0) violation(`${running} jobs still running on the server`);
  if (server.connectionCount !== 0) violation(`${server.connectionCount} connections still open`);
  // Back to the baseline: no kind of resource more numerous than before (the host, a test
  // runner say, may have dropped one of its own meanwhile).
  let extra = extraResources(baseline);
  while (extra.length > 0 && performance.now() < settleBy) {
    await sleep(20);
    extra = extraResources(baseline);
  }
  if (extra.length > 0) violation(`open handles beyond the baseline: ${extra.join(', ')}`);
  await new Promise<void>((resolve) => server.close(() => resolve()));

  // Each call, against the server's record.
  for (let id = 0; id < n; id++) {
    if (issuedBy[id] === -1) violation(`call ${id} was never issued`);
    if ((starts[id] as number) > 1) violation(`call ${id} ran ${starts[id]} times`);
    if (starts[id] !== ends[id]) violation(`call ${id} started ${starts[id]} times and ended ${ends[id]} times`);
    if (reports[id] !== 1) continue;
    const code = codes[reportCode[id] as number];
    if (code === 'ok' && endKind[id] !== End.Result) violation(`call ${id} reported a result the server never sent`);
    if (code === 'BAD') violation(`call ${id} got a wrong result`);
    if (code === 'UNCODED') violation(`call ${id} failed without a code`);
    if (code === 'HW_ERR_HANDLER' && endKind[id] !== End.Error) violation(`call ${id} reported a handler error the server never sent`);
  }

  const outcomes: Record<string, number> = {};
  for (let id = 0; id < n; id++) {
    if (reports[id] === 1) {
      const code = codes[reportCode[id] as number] as string;
      outcomes[code] = (outcomes[code] ?? 0) + 1;
    }
  }
  const quarter = Math.max(1, Math.floor(heapSamples.length / 4));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const first = median(heapSamples.slice(0, quarter));
  const last = median(heapSamples.slice(-quarter));
  const growth = first === 0 ? 0 : (last - first) / first;
  if (heapSamples.length >= 8 && growth >= options.maxHeapGrowth) {
    violation(`heap grew ${(growth * 100).toFixed(1)} % from the first quarter to the last (limit ${options.maxHeapGrowth * 100} %)`);
  }
  const cancelled = outcomes.HW_ERR_ABORTED ?? 0;
  return {
    calls: n,
    elapsedMs: Math.round(performance.now() - began),
    clientsSpawned,
    clientsKilled,
    clientsFrozen,
    outcomes,
    lostWithClient,
    faultShare: Math.round(((cancelled + inFlightAtFault) / n) * 10_000) / 10_000,
    heap: {
      firstQuarterMiB: Math.round((first / 2 ** 20) * 10) / 10,
      lastQuarterMiB: Math.round((last / 2 ** 20) * 10) / 10,
      growth: Math.round(growth * 10_000) / 10_000,
      samplesMiB: heapSamples.map((b) => Math.round((b / 2 ** 20) * 100) / 100),
    },
    violations,
  };
}

/** Resources keeping the loop alive now beyond those in `baseline`, as `Kind ×count`. */
function extraResources(baseline: readonly string[]): string[] {
  const count = (kinds: readonly string[]): Map<string, number> => {
    const out = new Map<string, number>();
    for (const kind of kinds) out.set(kind, (out.get(kind) ?? 0) + 1);
    return out;
  };
  const before = count(baseline);
  const extra: string[] = [];
  for (const [kind, now] of count(process.getActiveResourcesInfo())) {
    const more = now - (before.get(kind) ?? 0);
    if (more > 0) extra.push(`${kind} ×${more}`);
  }
  return extra;
}

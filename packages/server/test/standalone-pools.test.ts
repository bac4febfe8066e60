import { afterAll, describe, expect, it } from 'vitest';
import { AbortReason, HeartwireError, InvalidOptionError, StandalonePools, worker } from '@heartwire/server';

// Jobs run in dist/ (worker threads run JavaScript): `pnpm build` first.
const jobs = new URL('../../../test/fixtures/jobs.mjs', import.meta.url);

describe('StandalonePools: a worker() module in pools the caller owns', () => {
  const pools = new StandalonePools({ threadPoolSize: 1 });
  afterAll(() => pools.close());

  it('runs the module, forwards its progress in order, and resolves with its result', async () => {
    const seen: unknown[] = [];
    const result = await pools.run(worker(jobs), { kind: 'progress', count: 3 }, { signal: new AbortController().signal, onProgress: (d) => seen.push(d) });
    expect(result).toEqual({ sent: 3 });
    expect(seen).toEqual([0, 1, 2]);
  });

  it("stops a job that never yields when its signal aborts, and rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const running = pools.run(worker(jobs), { kind: 'spin', tag: 'standalone', ms: 20_000 }, {
      signal: controller.signal,
      onProgress: () => controller.abort(new AbortReason('HW_ERR_LEASE_EXPIRED', 'gone')),
    });
    await expect(running).rejects.toMatchObject({ code: 'HW_ERR_LEASE_EXPIRED' });
    // The thread was replaced: the next job runs.
    await expect(pools.run(worker(jobs), { kind: 'throw-coded', message: 'no' }, { signal: new AbortController().signal })).rejects.toBeInstanceOf(HeartwireError);
  });

  it('checks its options and its job the way a server does', () => {
    expect(() => new StandalonePools({ threadPoolSize: 0 })).toThrow(/threadPoolSize/);
    expect(() => new StandalonePools({ jobAbortGraceMs: 1.5 })).toThrow(/jobAbortGraceMs/);
    expect(() => pools.run({} as never, {}, { signal: new AbortController().signal })).toThrow(InvalidOptionError);
  });
});

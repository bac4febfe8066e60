import { describe, expect, it } from 'vitest';
import { AbortReason, HeartwireError } from '@heartwire/core';
import { worker } from '@heartwire/server';
import { DEFAULT_ENQUEUE_OPTIONS, DEFAULT_WORKER_OPTIONS, resolveEnqueueOptions, resolveWorkerOptions } from '@heartwire/queue';
import { decodeFailure, encodeFailure } from '../src/failure.js';
import { fleetKeys } from '../src/keys.js';

const job = worker(new URL('../../../test/fixtures/jobs.mjs', import.meta.url));
const base = { queue: 'q', connection: { host: '127.0.0.1', port: 6379 }, jobs: { spin: job } };

describe('enqueue options', () => {
  it('defaults, and messages that name the option', () => {
    expect(resolveEnqueueOptions()).toEqual(DEFAULT_ENQUEUE_OPTIONS);
    expect(() => resolveEnqueueOptions({ leaseMs: 10 })).toThrow(/leaseMs/);
    expect(() => resolveEnqueueOptions({ idempotent: 'yes' as never })).toThrow(/idempotent/);
    expect(() => resolveEnqueueOptions({ leaseMS: 100 } as never)).toThrow(/did you mean leaseMs/);
  });
});

describe('runWorker options', () => {
  it('defaults, and messages that name the option', () => {
    const o = resolveWorkerOptions(base);
    expect(o.leaseCheckMs).toBe(DEFAULT_WORKER_OPTIONS.leaseCheckMs);
    expect(o.prefix).toBe('bull');
    expect(() => resolveWorkerOptions({ ...base, queue: '' })).toThrow(/option queue/);
    expect(() => resolveWorkerOptions({ ...base, jobs: {} })).toThrow(/option jobs/);
    expect(() => resolveWorkerOptions({ ...base, leaseCheckMs: 0 })).toThrow(/leaseCheckMs/);
    expect(() => resolveWorkerOptions({ ...base, lockMs: 5 })).toThrow(/lockMs/);
    expect(() => resolveWorkerOptions({ ...base, connection: undefined as never })).toThrow(/connection/);
  });
});

describe('failures across the queue', () => {
  it('keeps the code of a HeartwireError, the new fleet codes among them', () => {
    for (const code of ['HW_ERR_LEASE_EXPIRED', 'HW_ERR_JOB_LOST', 'HW_ERR_PEER_RESET', 'APP_ERR_NOPE']) {
      const back = decodeFailure(encodeFailure(code, 'why: with a colon'));
      expect(back).toBeInstanceOf(HeartwireError);
      expect(back.code).toBe(code);
      expect(back.message).toBe('why: with a colon');
    }
    expect(new AbortReason('HW_ERR_LEASE_EXPIRED', 'x').code).toBe('HW_ERR_LEASE_EXPIRED');
  });

  it("maps BullMQ's own reasons: stalled too often is a crashed worker, anything else a handler error", () => {
    expect(decodeFailure('job stalled more than allowable limit').code).toBe('HW_ERR_WORKER_CRASHED');
    expect(decodeFailure('boom').code).toBe('HW_ERR_HANDLER');
    expect(decodeFailure(undefined).code).toBe('HW_ERR_HANDLER');
  });

  it('names its keys next to the queue', () => {
    const keys = fleetKeys('bull', 'render');
    expect(keys.owner('7')).toBe('bull:render:hw:owner:7');
    expect(keys.verdict('42')).toBe('bull:render:hw:verdict:42');
    expect(keys.cancel).toBe('bull:render:hw:cancel');
  });
});

import { describe, expect, it } from 'vitest';
import { AbortReason } from '@heartwire/core';
import { LazyAbortController } from '../src/calls/lazy-abort.js';

describe('LazyAbortController', () => {
  it('makes one signal, on first use, and fires it once with the first reason', () => {
    const controller = new LazyAbortController();
    const signal = controller.signal;
    expect(controller.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    const seen: unknown[] = [];
    signal.addEventListener('abort', () => seen.push(signal.reason));
    const first = new AbortReason('HW_ERR_CANCELLED', 'cancelled');
    controller.abort(first);
    controller.abort(new AbortReason('HW_ERR_PEER_CLOSED', 'later'));
    expect(seen).toEqual([first]);
    expect(signal.reason).toBe(first);
  });

  it('hands out a signal already aborted with the reason when asked only after the abort', () => {
    const controller = new LazyAbortController();
    const reason = new AbortReason('HW_ERR_PEER_RESET', 'reset');
    controller.abort(reason);
    controller.abort(new AbortReason('HW_ERR_CANCELLED', 'later'));
    expect(controller.signal.aborted).toBe(true);
    expect(controller.signal.reason).toBe(reason);
    expect(() => controller.signal.throwIfAborted()).toThrow(reason);
  });
});

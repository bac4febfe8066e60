import { describe, expect, it } from 'vitest';
import { AbortReason } from '@heartwire/core';
import { Call, type CallHost } from '../src/calls/call.js';

function host(): CallHost & { sent: [Call, unknown][] } {
  const sent: [Call, unknown][] = [];
  return { remoteAddress: '127.0.0.9', remotePort: 4242, sent, progress: (call, data) => (sent.push([call, data]), true) };
}

describe('Call, the context a handler gets', () => {
  it('reads as a CallContext: id, method, the connection address, a signal that aborts with the reason', () => {
    const h = host();
    const call = new Call(h, 7, 'render', 0);
    const { id, method, remoteAddress, remotePort, signal } = call;
    expect([id, method, remoteAddress, remotePort]).toEqual([7, 'render', '127.0.0.9', 4242]);
    const reason = new AbortReason('HW_ERR_PEER_CLOSED', 'gone');
    expect(call.aborted).toBe(false);
    call.abort(reason);
    call.abort(new AbortReason('HW_ERR_CANCELLED', 'later'));
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(call.aborted).toBe(true);
    expect(() => call.throwIfAborted()).toThrow(reason);
  });

  it('makes its signal only when asked, already aborted with the first reason if asked after the abort', async () => {
    const call = new Call(host(), 3, 'job', 0);
    const reason = new AbortReason('HW_ERR_PEER_RESET', 'reset');
    call.abort(reason);
    call.abort(new AbortReason('HW_ERR_CANCELLED', 'later'));
    expect(call.signal.aborted).toBe(true);
    expect(call.signal.reason).toBe(reason);
    await expect(call.yield()).rejects.toBe(reason);
  });

  it('yield resolves after a turn of the loop while the call runs', async () => {
    const call = new Call(host(), 4, 'job', 0);
    await expect(call.yield()).resolves.toBeUndefined();
  });

  it('progress works when detached from the context, and is the same function each time', () => {
    const h = host();
    const call = new Call(h, 1, 'job', 0);
    const progress = call.progress;
    expect(call.progress).toBe(progress);
    expect(progress({ frame: 1 })).toBe(true);
    expect(h.sent).toEqual([[call, { frame: 1 }]]);
  });
});

import { describe, expect, it } from 'vitest';
import { callRule, frameRule, FrameType, unknownCallViolation, type Phase, type Role } from '@heartwire/core';

const kind = (role: Role, phase: Phase, type: number, stream = 0, length = 0): string => frameRule(role, phase, type, stream, length).kind;

describe('frameRule: the rulebook of PROTOCOL.md §2, with no socket', () => {
  it('a server takes only HELLO first, holds frames while authenticating, and refuses a second HELLO', () => {
    expect(kind('server', 'handshake', FrameType.HELLO, 0, 12)).toBe('accept');
    for (const type of [FrameType.CALL, FrameType.PING, FrameType.CANCEL, 0x7e]) {
      expect(kind('server', 'handshake', type, type === FrameType.CALL || type === FrameType.CANCEL ? 1 : 0, type === FrameType.PING ? 4 : 0)).toBe('violation');
    }
    expect(kind('server', 'authenticating', FrameType.CALL, 1, 20)).toBe('hold');
    expect(kind('server', 'authenticating', 0x7e, 0, 5)).toBe('hold');
    expect(kind('server', 'authenticating', FrameType.HELLO, 0, 12)).toBe('violation');
    expect(kind('server', 'open', FrameType.HELLO, 0, 12)).toBe('violation');
  });

  it('each end receives only its own types; unknown types are skipped after the handshake', () => {
    for (const type of [FrameType.WELCOME, FrameType.ACCEPTED, FrameType.PROGRESS, FrameType.RESULT, FrameType.ERROR]) {
      const stream = type === FrameType.WELCOME ? 0 : 1;
      expect(kind('server', 'open', type, stream, 0), `type ${type}`).toBe('violation');
      expect(kind('client', 'open', type, stream, 0), `type ${type}`).toBe(type === FrameType.WELCOME ? 'violation' : 'accept');
    }
    for (const type of [FrameType.HELLO, FrameType.CALL, FrameType.CANCEL, FrameType.HALF_CLOSE]) {
      expect(kind('client', 'open', type, type === FrameType.CALL || type === FrameType.CANCEL ? 1 : 0, 0)).toBe('violation');
    }
    expect(kind('server', 'open', 0x7e, 9, 1 << 20)).toBe('ignore');
    expect(kind('client', 'open', 0x7e, 0, 10)).toBe('ignore');
  });

  it('lengths: PING and PONG exactly 4, CANCEL and HALF_CLOSE exactly 0, the small types at most 64 KiB', () => {
    expect(kind('server', 'open', FrameType.PING, 0, 4)).toBe('accept');
    expect(kind('server', 'open', FrameType.PING, 0, 3)).toBe('violation');
    expect(kind('server', 'open', FrameType.PONG, 0, 8)).toBe('violation');
    expect(kind('server', 'open', FrameType.CANCEL, 1, 1)).toBe('violation');
    expect(kind('server', 'open', FrameType.HALF_CLOSE, 0, 1)).toBe('violation');
    expect(kind('server', 'handshake', FrameType.HELLO, 0, 64 * 1024)).toBe('accept');
    expect(kind('server', 'handshake', FrameType.HELLO, 0, 64 * 1024 + 1)).toBe('violation');
    expect(kind('client', 'open', FrameType.ACCEPTED, 1, 10)).toBe('accept');
    expect(kind('client', 'open', FrameType.ACCEPTED, 1, 64 * 1024 + 1)).toBe('violation');
    expect(kind('client', 'open', FrameType.RESULT, 1, 4 << 20)).toBe('accept');
    expect(kind('server', 'open', FrameType.CALL, 1, 4 << 20)).toBe('accept');
  });

  it('stream ids: connection frames on 0, call frames elsewhere', () => {
    expect(kind('server', 'open', FrameType.PING, 3, 4)).toBe('violation');
    expect(kind('server', 'open', FrameType.CALL, 0, 5)).toBe('violation');
  });

  it('after HALF_CLOSE: PING and PONG ignored, anything else a violation (CANCEL and GOAWAY included)', () => {
    expect(kind('server', 'half-closed', FrameType.PING, 0, 4)).toBe('ignore');
    expect(kind('server', 'half-closed', FrameType.PONG, 0, 4)).toBe('ignore');
    expect(kind('server', 'half-closed', FrameType.CANCEL, 1, 0)).toBe('violation');
    expect(kind('server', 'half-closed', FrameType.CALL, 9, 5)).toBe('violation');
    expect(kind('server', 'half-closed', FrameType.GOAWAY, 0, 10)).toBe('violation');
    expect(kind('server', 'half-closed', FrameType.HALF_CLOSE, 0, 0)).toBe('violation');
  });

  it('GOAWAY goes both ways; a client takes it in place of WELCOME', () => {
    expect(kind('server', 'handshake', FrameType.GOAWAY, 0, 10)).toBe('accept');
    expect(kind('server', 'open', FrameType.GOAWAY, 0, 10)).toBe('accept');
    expect(kind('client', 'handshake', FrameType.GOAWAY, 0, 10)).toBe('accept');
    expect(kind('client', 'handshake', FrameType.WELCOME, 0, 10)).toBe('accept');
    expect(kind('client', 'handshake', FrameType.PING, 0, 4)).toBe('violation');
    expect(kind('client', 'open', FrameType.WELCOME, 0, 10)).toBe('violation');
  });

  it('a closed end ignores everything', () => {
    expect(kind('server', 'closed', FrameType.CALL, 0, 5)).toBe('ignore');
    expect(kind('client', 'closed', 0x7e, 0, 5)).toBe('ignore');
  });

  it('every violation is HW_ERR_PROTOCOL and names the frame type', () => {
    const rule = frameRule('server', 'open', FrameType.CANCEL, 1, 1);
    expect(rule.kind === 'violation' && rule.error.code).toBe('HW_ERR_PROTOCOL');
    expect(rule.kind === 'violation' && rule.error.message).toMatch(/0x08/);
  });
});

describe('callRule and unknownCallViolation: PROTOCOL.md §4', () => {
  it('ids must rise; a draining server refuses the call alone; so does a full connection', () => {
    expect(callRule('open', 5, 5, 0, 10)).toMatchObject({ kind: 'violation', error: { code: 'HW_ERR_PROTOCOL' } });
    expect(callRule('open', 4, 5, 0, 10).kind).toBe('violation');
    expect(callRule('draining', 6, 5, 0, 10)).toMatchObject({ kind: 'refuse', code: 'HW_ERR_SERVER_CLOSING' });
    expect(callRule('open', 6, 5, 10, 10)).toMatchObject({ kind: 'refuse', code: 'HW_ERR_TOO_MANY_CALLS' });
    expect(callRule('open', 6, 5, 9, 10).kind).toBe('run');
  });

  it('a frame for an id up to the last one used is stale; above it, a violation', () => {
    expect(unknownCallViolation(3, 7, 'CANCEL')).toBeUndefined();
    expect(unknownCallViolation(7, 7, 'CANCEL')).toBeUndefined();
    expect(unknownCallViolation(8, 7, 'CANCEL')?.code).toBe('HW_ERR_PROTOCOL');
  });
});

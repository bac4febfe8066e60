import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import * as esm from '@heartwire/core';
import {
  AbortReason,
  callErrorOf,
  CONNECTION_ERROR_CODES,
  ConnectionError,
  GOAWAY_CODES,
  HeartwireError,
  isConnectionErrorCode,
  isGoAwayCode,
  JobError,
  PayloadError,
  ProtocolError,
  RefusalError,
  RemoteError,
} from '@heartwire/core';

// A second copy of the package, as a project that ends up with two versions installed has: the built CommonJS file.
const require = createRequire(import.meta.url);
const copy = require('../dist/index.cjs') as typeof esm;

describe('the error family', () => {
  it('instanceof holds across copies of the package, for the base class and each subclass', () => {
    const theirs = new copy.AbortReason('HW_ERR_PEER_SILENT', 'x');
    expect(copy.AbortReason).not.toBe(AbortReason);
    expect(theirs instanceof AbortReason).toBe(true);
    expect(theirs instanceof HeartwireError).toBe(true);
    expect(theirs instanceof ProtocolError).toBe(false);
    const ours = new RefusalError('HW_ERR_IDLE_TIMEOUT', 'x');
    expect(ours instanceof copy.RefusalError).toBe(true);
    expect(ours instanceof copy.HeartwireError).toBe(true);
    expect(ours instanceof copy.ProtocolError).toBe(false);
  });

  it('a user subclass without a brand of its own is checked by its prototype chain', () => {
    class AppError extends HeartwireError {}
    expect(new AppError('E_APP', 'x') instanceof AppError).toBe(true);
    expect(new HeartwireError('E_APP', 'x') instanceof AppError).toBe(false);
    expect(new AppError('E_APP', 'x') instanceof HeartwireError).toBe(true);
  });

  it('each class names itself, and keeps its code', () => {
    for (const error of [
      new AbortReason('HW_ERR_CANCELLED', 'x'),
      new ProtocolError('HW_ERR_PROTOCOL', 'x'),
      new RefusalError('HW_ERR_OVER_BUDGET', 'x'),
      new PayloadError('HW_ERR_ENCODE', 'x'),
      new JobError('HW_ERR_WORKER_CRASHED', 'x'),
      new RemoteError('E_APP', 'x'),
      new ConnectionError('HW_ERR_SERVER_SILENT', 'x'),
    ]) {
      expect(error.name).toBe(error.constructor.name);
      expect(String(error)).toMatch(new RegExp(`^${error.constructor.name}: x$`));
    }
  });

  it('the code lists are the unions at run time', () => {
    expect(GOAWAY_CODES).toContain('HW_ERR_IDLE_TIMEOUT');
    expect(GOAWAY_CODES).not.toContain('HW_ERR_TOO_MANY_CALLS');
    expect(isGoAwayCode('HW_ERR_FRAME_TOO_LARGE')).toBe(true);
    expect(isGoAwayCode('HW_ERR_SERVER_CLOSING')).toBe(false);
    for (const code of GOAWAY_CODES) expect(isConnectionErrorCode(code)).toBe(true);
    expect(CONNECTION_ERROR_CODES).toContain('HW_ERR_SERVER_SILENT');
    expect(isConnectionErrorCode('E_APP')).toBe(false);
  });
});

describe('callErrorOf: what a handler may send (PROTOCOL.md §7)', () => {
  it.each([
    ['an application code', new HeartwireError('E_NOT_FOUND', 'no such file'), 'E_NOT_FOUND', 'no such file'],
    ['a job code', new JobError('HW_ERR_WORKER_CRASHED', 'died'), 'HW_ERR_WORKER_CRASHED', 'died'],
    ['a payload code', new PayloadError('HW_ERR_ENCODE', 'bad'), 'HW_ERR_ENCODE', 'bad'],
    ['HW_ERR_HANDLER itself', new HeartwireError('HW_ERR_HANDLER', 'h'), 'HW_ERR_HANDLER', 'h'],
  ])('%s passes through', (_name, err, code, message) => {
    expect(callErrorOf(err)).toEqual({ code, message });
  });

  it.each([
    ['HW_ERR_SERVER_CLOSING', new HeartwireError('HW_ERR_SERVER_CLOSING', 'retry me')],
    ['HW_ERR_SERVER_SHUTDOWN', new AbortReason('HW_ERR_SERVER_SHUTDOWN', 'bye')],
    ['HW_ERR_PROTOCOL', new ProtocolError('HW_ERR_PROTOCOL', 'p')],
    ['HW_ERR_UNKNOWN_METHOD', new HeartwireError('HW_ERR_UNKNOWN_METHOD', 'u')],
  ])('a handler cannot send %s: it becomes HW_ERR_HANDLER, naming the code', (code, err) => {
    const out = callErrorOf(err);
    expect(out.code).toBe('HW_ERR_HANDLER');
    expect(out.message).toContain(code);
  });

  it('anything else thrown, a plain Error with a code included, is HW_ERR_HANDLER with its message', () => {
    expect(callErrorOf(Object.assign(new Error('gone'), { code: 'ENOENT' }))).toEqual({ code: 'HW_ERR_HANDLER', message: 'gone' });
    expect(callErrorOf('a string')).toEqual({ code: 'HW_ERR_HANDLER', message: 'a string' });
  });
});

import { describe, expect, it } from 'vitest';
import {
  AbortReason,
  CALL_FRAME_TYPES,
  CONNECTION_FRAME_TYPES,
  FrameType,
  HeartwireError,
  InvalidOptionError,
  PING_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  MIN_MAX_FRAME_BYTES,
  PayloadCodec,
  PayloadError,
  ProtocolError,
  RemoteError,
  streamViolation,
  checkIntegerOption,
  checkKnownOptions,
  checkObjectOption,
  decodeCall,
  decodeCallError,
  decodeGoAway,
  decodeHello,
  decodePingPayload,
  decodeWelcome,
  encodeCall,
  encodeCallError,
  encodeGoAway,
  encodeHello,
  encodePingPayload,
  encodeWelcome,
  negotiate,
  resolveCodecLimits,
  type Hello,
  type ServerTerms,
  type Welcome,
} from '@heartwire/core';
import { hex, toHex } from './hex.js';
import { catchError } from './thrown.js';

const codec = new PayloadCodec();
const enc = (value: unknown): Uint8Array => codec.encode(value);

function expectProtocolError(fn: () => unknown, code = 'HW_ERR_PROTOCOL'): ProtocolError {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(ProtocolError);
  expect(err).toBeInstanceOf(HeartwireError);
  expect((err as ProtocolError).code).toBe(code);
  return err as ProtocolError;
}

function expectBadPayload(fn: () => unknown): PayloadError {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(PayloadError);
  expect((err as PayloadError).code).toBe('HW_ERR_BAD_PAYLOAD');
  return err as PayloadError;
}

// ---------------------------------------------------------------- HELLO

describe('HELLO', () => {
  it('round trips with all fields', () => {
    const hello: Hello = { versions: [1, 2], heartbeatMs: 5_000, maxFrameBytes: 1 << 20 };
    expect(decodeHello(codec, encodeHello(codec, hello))).toEqual(hello);
  });

  it('round trips with versions only; optional fields stay absent', () => {
    const out = decodeHello(codec, encodeHello(codec, { versions: [1] }));
    expect(out).toEqual({ versions: [1] });
    expect('heartbeatMs' in out).toBe(false);
    expect('maxFrameBytes' in out).toBe(false);
  });

  it('null optional fields are treated as absent', () => {
    expect(decodeHello(codec, enc({ versions: [1], heartbeatMs: null, maxFrameBytes: null }))).toEqual({ versions: [1] });
  });

  it('carries auth, any value, as it was sent; nil auth is none', () => {
    for (const auth of ['token', { user: 'u', sig: new Uint8Array([1, 2]) }, [1, 2], 0, false]) {
      const out = decodeHello(codec, encodeHello(codec, { versions: [1], auth }));
      expect(out.auth).toEqual(auth);
    }
    expect('auth' in decodeHello(codec, enc({ versions: [1], auth: null }))).toBe(false);
  });

  it('ignores unknown keys', () => {
    const out = decodeHello(codec, enc({ versions: [1], heartbeatMs: 100, future: { x: [1] }, other: 'y' }));
    expect(out).toEqual({ versions: [1], heartbeatMs: 100 });
    expect(Object.keys(out).sort()).toEqual(['heartbeatMs', 'versions']);
  });

  it.each<[string, unknown]>([
    ['an array', [[1]]],
    ['a string', 'hello'],
    ['a number', 1],
    ['nil', null],
    ['binary', new Uint8Array([1])],
    ['a map without versions', { heartbeatMs: 1000 }],
    ['versions not an array', { versions: 1 }],
    ['versions with a string', { versions: ['1'] }],
    ['versions with zero', { versions: [0] }],
    ['versions with a negative', { versions: [1, -2] }],
    ['versions with a float', { versions: [1.5] }],
    ['heartbeatMs zero', { versions: [1], heartbeatMs: 0 }],
    ['heartbeatMs negative', { versions: [1], heartbeatMs: -5 }],
    ['heartbeatMs a float', { versions: [1], heartbeatMs: 2.5 }],
    ['heartbeatMs a string', { versions: [1], heartbeatMs: '1000' }],
    ['maxFrameBytes zero', { versions: [1], maxFrameBytes: 0 }],
    ['maxFrameBytes a bool', { versions: [1], maxFrameBytes: true }],
  ])('rejects %s with ProtocolError HW_ERR_PROTOCOL', (_name, value) => {
    expectProtocolError(() => decodeHello(codec, enc(value)));
  });

  it('rejects bytes that are not MessagePack with ProtocolError, not PayloadError', () => {
    const err = expectProtocolError(() => decodeHello(codec, new Uint8Array([0xc1])));
    expect(err).not.toBeInstanceOf(PayloadError);
    expect(err.message).toMatch(/HELLO/);
    expectProtocolError(() => decodeHello(codec, new Uint8Array(0)));
  });
});

// ---------------------------------------------------------------- WELCOME

describe('WELCOME', () => {
  const welcome: Welcome = { version: 1, heartbeatMs: 5_000, silentMs: 15_000, maxFrameBytes: 1 << 20, maxCalls: 64 };

  it('round trips', () => {
    expect(decodeWelcome(codec, encodeWelcome(codec, welcome))).toEqual(welcome);
  });

  it('ignores unknown keys', () => {
    expect(decodeWelcome(codec, enc({ ...welcome, extra: 'x' }))).toEqual(welcome);
  });

  for (const key of ['version', 'heartbeatMs', 'silentMs', 'maxFrameBytes', 'maxCalls'] as const) {
    it(`rejects a missing or bad ${key}, naming it`, () => {
      const missing: Record<string, unknown> = { ...welcome };
      delete missing[key];
      expect(expectProtocolError(() => decodeWelcome(codec, enc(missing))).message).toContain(key);
      expect(expectProtocolError(() => decodeWelcome(codec, enc({ ...welcome, [key]: 0 }))).message).toContain(key);
      expect(expectProtocolError(() => decodeWelcome(codec, enc({ ...welcome, [key]: 'x' }))).message).toContain(key);
    });
  }

  it('rejects a non-map and non-MessagePack bytes', () => {
    expectProtocolError(() => decodeWelcome(codec, enc([1, 2, 3])));
    expectProtocolError(() => decodeWelcome(codec, new Uint8Array([0x92, 0x01])));
  });
});

// ---------------------------------------------------------------- CALL

describe('CALL', () => {
  it('round trips method and params of many kinds', () => {
    for (const params of [null, 1, 'x', [1, 2, 3], { a: { b: [new Uint8Array([1])] } }, true]) {
      const out = decodeCall(codec, encodeCall(codec, 'math.sum', params), 64);
      expect(out.method).toBe('math.sum');
      expect(out.params).toEqual(params);
    }
  });

  it('encodes as a two-element array [method, params]', () => {
    expect(toHex(encodeCall(codec, 'a', 1))).toBe('92a16101');
  });

  it.each<[string, unknown]>([
    ['a map', { method: 'a', params: 1 }],
    ['a string', 'a'],
    ['nil', null],
    ['a one-element array', ['a']],
    ['a three-element array', ['a', 1, 2]],
    ['an empty array', []],
    ['a non-string method', [1, 2]],
    ['a binary method', [new Uint8Array([0x61]), 2]],
  ])('rejects %s with PayloadError HW_ERR_BAD_PAYLOAD', (_name, value) => {
    expectBadPayload(() => decodeCall(codec, enc(value), 64));
  });

  it('rejects bytes that are not MessagePack with PayloadError HW_ERR_BAD_PAYLOAD', () => {
    expectBadPayload(() => decodeCall(codec, new Uint8Array([0x92, 0xa1]), 64));
  });

  it('enforces maxMethodLength: exactly the limit passes, one more fails, empty fails', () => {
    expect(decodeCall(codec, encodeCall(codec, 'abcd', null), 4).method).toBe('abcd');
    const err = expectBadPayload(() => decodeCall(codec, encodeCall(codec, 'abcde', null), 4));
    expect(err.message).toContain('4');
    expectBadPayload(() => decodeCall(codec, encodeCall(codec, '', null), 4));
  });

  it('a missing params element is not the same as nil params', () => {
    expect(decodeCall(codec, enc(['m', null]), 8)).toEqual({ method: 'm', params: null });
    expectBadPayload(() => decodeCall(codec, enc(['m']), 8));
  });

  it('maxMethodLength counts UTF-8 bytes, not UTF-16 code units', () => {
    // 'é' is 1 code unit and 2 bytes; '😀' is 2 code units and 4 bytes.
    expect(decodeCall(codec, encodeCall(codec, 'éé', null), 4).method).toBe('éé');
    expect(expectBadPayload(() => decodeCall(codec, encodeCall(codec, 'ééa', null), 4)).message).toMatch(/UTF-8 bytes long, got 5/);
    expect(decodeCall(codec, encodeCall(codec, '😀', null), 4).method).toBe('😀');
    expectBadPayload(() => decodeCall(codec, encodeCall(codec, 'a😀', null), 4));
  });

  it('the method length is checked from its header, before the name is decoded', () => {
    // A str32 header announcing 1 MiB of name, with no name bytes behind it: refused as a bad shape, not read.
    expectBadPayload(() => decodeCall(codec, hex('92 db 00100000 c0'), 256));
    const long = encodeCall(codec, 'm'.repeat(300), null);
    expect(expectBadPayload(() => decodeCall(codec, long, 256)).message).toContain('got 300');
  });

  it('takes the wrapper and the name in any MessagePack format', () => {
    for (const bytes of ['92 a1 6d 01', 'dc 0002 a1 6d 01', 'dd 00000002 a1 6d 01', '92 d9 01 6d 01', '92 da 0001 6d 01', '92 db 00000001 6d 01']) {
      expect(decodeCall(codec, hex(bytes), 8)).toEqual({ method: 'm', params: 1 });
    }
  });

  it.each<[string, string]>([
    ['a truncated array16 header', 'dc 00'],
    ['an array16 of three', 'dc 0003 a1 6d 01 01'],
    ['a truncated str8 header', '92 d9'],
    ['a name longer than the payload', '92 a5 6d 6d'],
    ['nothing after the name', '92 a1 6d'],
    ['trailing bytes after params', '92 a1 6d 01 02'],
    ['a name that is not valid UTF-8', '92 a2 6d ff'],
    ['a name that is a lone surrogate in UTF-8', '92 a3 eda080 c0'],
  ])('refuses %s with HW_ERR_BAD_PAYLOAD', (_name, bytes) => {
    expectBadPayload(() => decodeCall(codec, hex(bytes), 8));
  });

  it('keeps a non-ASCII or long name exactly, a BOM included', () => {
    for (const method of ['\ufeffx', 'naïve.ça', '日本語', 'x'.repeat(200), 'é'.repeat(100)]) {
      expect(decodeCall(codec, encodeCall(codec, method, 1), 256).method).toBe(method);
    }
  });

  it('params are held to the codec limits on their own: the wrapper is not counted', () => {
    const limited = new PayloadCodec(resolveCodecLimits({ maxDepth: 3, maxArrayLength: 1 }));
    // params [[0]] is 3 levels: accepted, inside a wrapper array of 2 elements.
    expect(decodeCall(limited, encodeCall(limited, 'm', [[0]]), 8)).toEqual({ method: 'm', params: [[0]] });
    expect(toHex(encodeCall(limited, 'm', [[0]]))).toBe('92a16d919100');
    expectBadPayload(() => decodeCall(limited, hex('92 a1 6d 91 91 91 00'), 8));
    expect(() => encodeCall(limited, 'm', [[[0]]])).toThrow(PayloadError);
  });

  it('map keys in params follow the codec rules', () => {
    expectBadPayload(() => decodeCall(codec, hex('92 a1 6d 81 01 02'), 8));
    expectBadPayload(() => decodeCall(codec, hex('92 a1 6d 82 a1 61 01 a1 61 02'), 8));
  });
});

// ---------------------------------------------------------------- ERROR

describe('ERROR', () => {
  it('round trips', () => {
    const bytes = encodeCallError(codec, 'HW_ERR_HANDLER', 'boom: ünïcode');
    expect(decodeCallError(codec, bytes)).toEqual({ code: 'HW_ERR_HANDLER', message: 'boom: ünïcode' });
  });

  it('keeps a code this version does not know', () => {
    expect(decodeCallError(codec, encodeCallError(codec, 'APP_E_42', '')).code).toBe('APP_E_42');
  });

  it.each<[string, unknown]>([
    ['a map', { code: 'x', message: 'y' }],
    ['a non-string code', [1, 'm']],
    ['a missing message', ['HW_ERR_HANDLER']],
    ['a non-string message', ['HW_ERR_HANDLER', null]],
  ])('rejects %s with ProtocolError', (_name, value) => {
    expectProtocolError(() => decodeCallError(codec, enc(value)));
  });
});

// ---------------------------------------------------------------- GOAWAY

describe('GOAWAY', () => {
  it('round trips, lastStream 0 and the largest stream id', () => {
    for (const lastStream of [0, 7, 0xffffffff]) {
      const body = { code: 'HW_ERR_SERVER_SHUTDOWN', message: 'bye', lastStream };
      expect(decodeGoAway(codec, encodeGoAway(codec, body))).toEqual(body);
    }
  });

  it.each<[string, unknown]>([
    ['a map', { code: 'x', message: 'y', lastStream: 1 }],
    ['a negative lastStream', ['c', 'm', -1]],
    ['a float lastStream', ['c', 'm', 1.5]],
    ['a string lastStream', ['c', 'm', '1']],
    ['a missing lastStream', ['c', 'm']],
    ['a non-string code', [null, 'm', 1]],
  ])('rejects %s with ProtocolError', (_name, value) => {
    expectProtocolError(() => decodeGoAway(codec, enc(value)));
  });
});

// ---------------------------------------------------------------- PING / PONG

describe('PING and PONG payloads', () => {
  it('encode a u32 big-endian sequence number', () => {
    expect(toHex(encodePingPayload(1))).toBe('00000001');
    expect(toHex(encodePingPayload(0x01020304))).toBe('01020304');
    expect(toHex(encodePingPayload(0xffffffff))).toBe('ffffffff');
    expect(encodePingPayload(5).byteLength).toBe(PING_PAYLOAD_BYTES);
  });

  it('round trip', () => {
    for (const seq of [0, 1, 2, 255, 256, 65_536, 0x7fffffff, 0x80000000, 0xffffffff]) {
      expect(decodePingPayload(encodePingPayload(seq))).toBe(seq);
    }
  });

  it('decode from a view at an odd offset', () => {
    const backing = new Uint8Array([0xaa, 0, 0, 1, 0, 0xbb]);
    expect(decodePingPayload(backing.subarray(1, 5))).toBe(256);
  });

  it('reject a payload of the wrong length', () => {
    for (const n of [0, 1, 3, 5, 8]) {
      const err = expectProtocolError(() => decodePingPayload(new Uint8Array(n)));
      expect(err.message).toContain(String(n));
    }
  });
});

// ---------------------------------------------------------------- negotiate

describe('negotiate', () => {
  const terms: ServerTerms = { heartbeatMs: 10_000, minHeartbeatMs: 1_000, silentMs: 30_000, maxFrameBytes: 1 << 20, maxCalls: 32 };

  it('picks version 1 and copies the server terms', () => {
    expect(negotiate({ versions: [1] }, terms)).toEqual({
      version: PROTOCOL_VERSION,
      heartbeatMs: 10_000,
      silentMs: 30_000,
      maxFrameBytes: 1 << 20,
      maxCalls: 32,
    });
    expect(PROTOCOL_VERSION).toBe(1);
  });

  it('picks version 1 among others the client lists', () => {
    expect(negotiate({ versions: [3, 2, 1] }, terms).version).toBe(1);
  });

  it('clamps the client heartbeat to [minHeartbeatMs, heartbeatMs]', () => {
    expect(negotiate({ versions: [1], heartbeatMs: 5_000 }, terms).heartbeatMs).toBe(5_000);
    expect(negotiate({ versions: [1], heartbeatMs: 1 }, terms).heartbeatMs).toBe(1_000);
    expect(negotiate({ versions: [1], heartbeatMs: 1_000 }, terms).heartbeatMs).toBe(1_000);
    expect(negotiate({ versions: [1], heartbeatMs: 999_999 }, terms).heartbeatMs).toBe(10_000);
    expect(negotiate({ versions: [1], heartbeatMs: 10_000 }, terms).heartbeatMs).toBe(10_000);
  });

  it('uses the server heartbeat when the client states none', () => {
    expect(negotiate({ versions: [1] }, terms).heartbeatMs).toBe(10_000);
  });

  it('rejects a HELLO without version 1 with HW_ERR_UNSUPPORTED_VERSION', () => {
    const err = expectProtocolError(() => negotiate({ versions: [2, 3] }, terms), 'HW_ERR_UNSUPPORTED_VERSION');
    expect(err.message).toContain('2, 3');
    expectProtocolError(() => negotiate({ versions: [] }, terms), 'HW_ERR_UNSUPPORTED_VERSION');
  });

  it('a decoded HELLO feeds negotiate end to end', () => {
    const hello = decodeHello(codec, encodeHello(codec, { versions: [1], heartbeatMs: 200 }));
    const welcome = negotiate(hello, terms);
    expect(decodeWelcome(codec, encodeWelcome(codec, welcome))).toEqual({ ...welcome, heartbeatMs: 1_000 });
  });
});

// ---------------------------------------------------------------- checkFrameStream

describe('streamViolation', () => {
  const frame = (type: number, stream: number) => ({ type, flags: 0, stream, payload: new Uint8Array(0) });

  it('the connection and call type sets are disjoint and cover the known types', () => {
    const known = Object.values(FrameType);
    for (const t of known) expect(CONNECTION_FRAME_TYPES.has(t) !== CALL_FRAME_TYPES.has(t)).toBe(true);
    expect(CONNECTION_FRAME_TYPES.size + CALL_FRAME_TYPES.size).toBe(known.length);
  });

  it('accepts connection frames on stream 0', () => {
    for (const t of CONNECTION_FRAME_TYPES) expect(streamViolation(t, 0)).toBeUndefined();
  });

  it('rejects connection frames on a non-zero stream', () => {
    for (const t of CONNECTION_FRAME_TYPES) {
      for (const stream of [1, 0xffffffff]) {
        const err = streamViolation(t, stream);
        expect(err).toBeInstanceOf(ProtocolError);
        expect(err?.code).toBe('HW_ERR_PROTOCOL');
        expect(err?.message).toContain(t.toString(16).padStart(2, '0'));
      }
    }
  });

  it('accepts call frames on a non-zero stream', () => {
    for (const t of CALL_FRAME_TYPES) {
      expect(streamViolation(t, 1)).toBeUndefined();
      expect(streamViolation(t, 0xffffffff)).toBeUndefined();
    }
  });

  it('rejects call frames on stream 0', () => {
    for (const t of CALL_FRAME_TYPES) {
      const err = streamViolation(t, 0);
      expect(err).toBeInstanceOf(ProtocolError);
      expect(err?.code).toBe('HW_ERR_PROTOCOL');
    }
    expect(streamViolation(FrameType.CALL, 0)?.message).toContain('0x03');
  });

  it('lets unknown types pass on any stream', () => {
    for (const t of [0x00, 0x0d, 0x7f, 0xff]) {
      expect(streamViolation(t, 0)).toBeUndefined();
      expect(streamViolation(t, 9)).toBeUndefined();
    }
  });
});

// ---------------------------------------------------------------- errors

describe('error family', () => {
  it('AbortReason is a HeartwireError and an AbortReason', () => {
    const reason = new AbortReason('HW_ERR_PEER_SILENT', 'peer went quiet', { cause: 'x' });
    expect(reason).toBeInstanceOf(HeartwireError);
    expect(reason).toBeInstanceOf(AbortReason);
    expect(reason).toBeInstanceOf(Error);
    expect(reason.code).toBe('HW_ERR_PEER_SILENT');
    expect(reason.name).toBe('AbortReason');
    expect(reason.message).toBe('peer went quiet');
    expect(reason.cause).toBe('x');
  });

  it('a RemoteError is a HeartwireError but not an AbortReason', () => {
    const remote = new RemoteError('APP_CUSTOM', 'remote said no');
    expect(remote).toBeInstanceOf(HeartwireError);
    expect(remote).toBeInstanceOf(RemoteError);
    expect(remote).not.toBeInstanceOf(AbortReason);
    expect(remote.code).toBe('APP_CUSTOM');
    expect(remote.name).toBe('RemoteError');
  });

  it('each subclass has its name and is not an instance of its siblings', () => {
    const all: [HeartwireError, string][] = [
      [new ProtocolError('HW_ERR_PROTOCOL', 'p'), 'ProtocolError'],
      [new PayloadError('HW_ERR_ENCODE', 'e'), 'PayloadError'],
      [new InvalidOptionError('o'), 'InvalidOptionError'],
      [new AbortReason('HW_ERR_CANCELLED', 'c'), 'AbortReason'],
      [new RemoteError('X', 'r'), 'RemoteError'],
    ];
    const classes = [ProtocolError, PayloadError, InvalidOptionError, AbortReason, RemoteError];
    for (const [err, name] of all) {
      expect(err.name).toBe(name);
      expect(err).toBeInstanceOf(HeartwireError);
      for (const cls of classes) expect(err instanceof cls).toBe(cls.name === name);
    }
    expect(new InvalidOptionError('o').code).toBe('HW_ERR_INVALID_OPTION');
  });

  it('plain errors and non-objects are not HeartwireErrors', () => {
    expect(new Error('x')).not.toBeInstanceOf(HeartwireError);
    expect((null as unknown) instanceof HeartwireError).toBe(false);
    expect(('HW_ERR_PROTOCOL' as unknown) instanceof HeartwireError).toBe(false);
    expect({ code: 'HW_ERR_PROTOCOL' } instanceof HeartwireError).toBe(false);
  });

  it('checkIntegerOption names the option and returns a good value', () => {
    expect(checkIntegerOption('server.maxCalls', 5, 1)).toBe(5);
    expect(checkIntegerOption('x', 10, 1, 10)).toBe(10);
    const err = catchError(() => checkIntegerOption('server.maxCalls', 0, 1, 100));
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).message).toBe('option server.maxCalls must be an integer from 1 to 100, got 0');
    expect((catchError(() => checkIntegerOption('a.b', 'x', 1)) as Error).message).toBe(
      'option a.b must be an integer >= 1, got "x"',
    );
    expect((catchError(() => checkIntegerOption('a.b', [1], 1)) as Error).message).toContain('got an array');
  });

  it('checkKnownOptions refuses a name it does not know, and suggests the one that differs only in case', () => {
    expect(() => checkKnownOptions({ heartbeatMs: 1 }, ['heartbeatMs', 'silentMs'])).not.toThrow();
    expect(() => checkKnownOptions({}, [])).not.toThrow();
    const typo = catchError(() => checkKnownOptions({ silentms: 1 }, ['heartbeatMs', 'silentMs']));
    expect(typo).toBeInstanceOf(InvalidOptionError);
    expect((typo as Error).message).toBe('unknown option silentms (did you mean silentMs?)');
    const unknown = catchError(() => checkKnownOptions({ colour: 'red' }, ['heartbeatMs', 'silentMs'], 'codec.'));
    expect((unknown as Error).message).toBe('unknown option codec.colour (known options: codec.heartbeatMs, codec.silentMs)');
  });

  it('checkObjectOption accepts undefined and plain objects, and names the option otherwise', () => {
    expect(checkObjectOption('tls', undefined)).toBeUndefined();
    const value = { key: 'k' };
    expect(checkObjectOption('tls', value)).toBe(value);
    for (const [bad, got] of [
      [null, 'null'],
      [[1], 'an array'],
      ['yes', '"yes"'],
      [true, 'true'],
    ] as const) {
      const err = catchError(() => checkObjectOption('tls', bad));
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect((err as Error).message).toBe(`option tls must be an object, got ${got}`);
    }
  });
});

describe('frame limits announced in the handshake', () => {
  const c = new PayloadCodec();
  it('HELLO and WELCOME must announce at least MIN_MAX_FRAME_BYTES', () => {
    expect(MIN_MAX_FRAME_BYTES).toBe(1024);
    const hello = (maxFrameBytes: number) => c.encode({ versions: [1], maxFrameBytes });
    expect(decodeHello(c, hello(1024)).maxFrameBytes).toBe(1024);
    expect(() => decodeHello(c, hello(1023))).toThrow(ProtocolError);
    const welcome = (maxFrameBytes: number) =>
      c.encode({ version: 1, heartbeatMs: 1000, silentMs: 3000, maxFrameBytes, maxCalls: 100 });
    expect(decodeWelcome(c, welcome(1024)).maxFrameBytes).toBe(1024);
    expect(() => decodeWelcome(c, welcome(1023))).toThrow(/maxFrameBytes/);
  });
});

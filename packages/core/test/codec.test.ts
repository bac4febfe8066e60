import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CODEC_LIMITS,
  HeartwireError,
  InvalidOptionError,
  PayloadCodec,
  PayloadError,
  resolveCodecLimits,
  type CodecLimits,
} from '@heartwire/core';
import { hex, toHex } from './hex.js';
import { catchError } from './thrown.js';

function expectPayloadError(fn: () => unknown, code: 'HW_ERR_BAD_PAYLOAD' | 'HW_ERR_ENCODE'): PayloadError {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(PayloadError);
  expect(err).toBeInstanceOf(HeartwireError);
  expect((err as PayloadError).code).toBe(code);
  expect((err as PayloadError).name).toBe('PayloadError');
  return err as PayloadError;
}

function codecWith(limits: Partial<CodecLimits>): PayloadCodec {
  return new PayloadCodec(resolveCodecLimits(limits));
}

describe('PayloadCodec: round trips', () => {
  const codec = new PayloadCodec();

  const cases: [string, unknown][] = [
    ['null', null],
    ['true', true],
    ['false', false],
    ['zero', 0],
    ['positive fixint', 127],
    ['negative fixint', -32],
    ['uint8', 200],
    ['int16', -30_000],
    ['uint32', 0xffffffff],
    ['int32 min', -0x80000000],
    ['max safe integer', Number.MAX_SAFE_INTEGER],
    ['min safe integer', Number.MIN_SAFE_INTEGER],
    ['float', 3.141592653589793],
    ['negative float', -0.000123],
    ['infinity', Infinity],
    ['empty string', ''],
    ['ascii string', 'hello'],
    ['unicode string', 'héllo wörld — 日本語 😀 \u0000 end'],
    ['long string', 'x'.repeat(70_000)],
    ['empty array', []],
    ['empty map', {}],
    ['array of mixed', [1, 'two', null, true, 4.5, [6], { seven: 7 }]],
    [
      'nested maps and arrays',
      {
        user: { id: 42, name: 'Zoë', tags: ['a', 'b'], meta: { nested: { deeper: [1, [2, [3, [4]]]] } } },
        list: [{ a: 1 }, { b: [true, false] }],
        empty: { arr: [], map: {} },
      },
    ],
    ['map with unicode keys', { 'ключ': 'значение', '🔑': 1 }],
    ['map with constructor-like keys', { constructor: 1, toString: 'x', hasOwnProperty: null }],
    ['big array', Array.from({ length: 1000 }, (_, i) => i * 3)],
  ];

  for (const [name, value] of cases) {
    it(`round trips ${name}`, () => {
      const bytes = codec.encode(value);
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(codec.decode(bytes)).toEqual(value);
    });
  }

  it('NaN round trips', () => {
    expect(Number.isNaN(codec.decode(codec.encode(Number.NaN)))).toBe(true);
  });

  it('binary Uint8Array round trips as Uint8Array with the same bytes', () => {
    const bin = new Uint8Array([0, 1, 2, 254, 255]);
    const out = codec.decode(codec.encode(bin));
    expect(out).toBeInstanceOf(Uint8Array);
    expect(Array.from(out as Uint8Array)).toEqual([0, 1, 2, 254, 255]);
  });

  it('binary nested in a structure, including an empty one and a view at an offset', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const value = { blob: backing.subarray(2, 5), empty: new Uint8Array(0), list: [new Uint8Array([7])] };
    const out = codec.decode(codec.encode(value)) as { blob: Uint8Array; empty: Uint8Array; list: Uint8Array[] };
    expect(Array.from(out.blob)).toEqual([1, 2, 3]);
    expect(out.empty).toBeInstanceOf(Uint8Array);
    expect(out.empty.byteLength).toBe(0);
    expect(Array.from(out.list[0] as Uint8Array)).toEqual([7]);
  });

  it('undefined in a map is kept as a key (encoded as nil)', () => {
    const out = codec.decode(codec.encode({ a: undefined, b: 1 })) as Record<string, unknown>;
    expect(Object.keys(out).sort()).toEqual(['a', 'b']);
    expect(out.a).toBeNull();
  });

  it('encode returns a fresh buffer: a later encode does not overwrite an earlier result', () => {
    const first = codec.encode({ value: 'first' });
    const snapshot = toHex(first);
    const second = codec.encode({ value: 'second, and longer' });
    expect(toHex(first)).toBe(snapshot);
    expect(first.buffer).not.toBe(second.buffer);
    expect(codec.decode(first)).toEqual({ value: 'first' });
  });

  it('encodes known bytes (hex vectors)', () => {
    expect(toHex(codec.encode(null))).toBe('c0');
    expect(toHex(codec.encode(true))).toBe('c3');
    expect(toHex(codec.encode(1))).toBe('01');
    expect(toHex(codec.encode('a'))).toBe('a161');
    expect(toHex(codec.encode([1, 2]))).toBe('920102');
    expect(toHex(codec.encode({ a: 1 }))).toBe('81a16101');
    expect(toHex(codec.encode(new Uint8Array([1, 2])))).toBe('c4020102');
  });

  it('decodes a value from a view at a non-zero offset', () => {
    const backing = hex('ff ff 92 01 a1 62 ff');
    expect(codec.decode(backing.subarray(2, 6))).toEqual([1, 'b']);
  });

  it('keeps working after a decode error and after an encode error', () => {
    expect(() => codec.decode(hex('92 01'))).toThrow(PayloadError);
    expect(codec.decode(codec.encode([1, 2]))).toEqual([1, 2]);
    expect(() => codec.encode(() => 1)).toThrow(PayloadError);
    expect(codec.decode(codec.encode({ ok: true }))).toEqual({ ok: true });
  });
});

describe('PayloadCodec: decode errors are PayloadError HW_ERR_BAD_PAYLOAD', () => {
  const codec = new PayloadCodec();

  it('empty input', () => {
    expectPayloadError(() => codec.decode(new Uint8Array(0)), 'HW_ERR_BAD_PAYLOAD');
  });

  it('truncated bytes, at every truncation point of a real payload', () => {
    const full = codec.encode({ method: 'sum', params: [1, 2, 3], blob: new Uint8Array([1, 2, 3]), s: 'héllo' });
    for (let n = 0; n < full.byteLength; n++) {
      const err = expectPayloadError(() => codec.decode(full.subarray(0, n)), 'HW_ERR_BAD_PAYLOAD');
      expect(err.cause).toBeDefined();
    }
    expect(codec.decode(full)).toBeTruthy();
  });

  it('trailing extra bytes', () => {
    expectPayloadError(() => codec.decode(hex('01 02')), 'HW_ERR_BAD_PAYLOAD');
    const good = codec.encode({ a: [1, 2] });
    const padded = new Uint8Array(good.byteLength + 1);
    padded.set(good);
    const err = expectPayloadError(() => codec.decode(padded), 'HW_ERR_BAD_PAYLOAD');
    expect(err.message).toMatch(/not valid MessagePack/);
  });

  it('an array header claiming 4 billion items (dd ff ff ff ff) is refused', () => {
    const err = expectPayloadError(() => codec.decode(hex('dd ff ff ff ff')), 'HW_ERR_BAD_PAYLOAD');
    expect(err.message).toMatch(/maxArrayLength/);
  });

  it('a map header claiming 4 billion entries (df ff ff ff ff) is refused', () => {
    const err = expectPayloadError(() => codec.decode(hex('df ff ff ff ff')), 'HW_ERR_BAD_PAYLOAD');
    expect(err.message).toMatch(/maxMapLength/);
  });

  it('a str32 header claiming 4 GiB is refused by maxStrLength', () => {
    const err = expectPayloadError(() => codec.decode(hex('db ff ff ff ff')), 'HW_ERR_BAD_PAYLOAD');
    expect(err.message).toMatch(/maxStrLength/);
  });

  it('a bin32 header claiming 4 GiB is refused by maxBinLength', () => {
    const err = expectPayloadError(() => codec.decode(hex('c6 ff ff ff ff')), 'HW_ERR_BAD_PAYLOAD');
    expect(err.message).toMatch(/maxBinLength/);
  });

  it('unused byte 0xc1 is refused', () => {
    expectPayloadError(() => codec.decode(hex('c1')), 'HW_ERR_BAD_PAYLOAD');
  });
});

describe('PayloadCodec: configured limits', () => {
  it('maxArrayLength: exactly at the limit passes, one more fails', () => {
    const codec = codecWith({ maxArrayLength: 3 });
    expect(codec.decode(codec.encode([1, 2, 3]))).toEqual([1, 2, 3]);
    expectPayloadError(() => codec.decode(codec.encode([1, 2, 3, 4])), 'HW_ERR_BAD_PAYLOAD');
  });

  it('maxStrLength counts UTF-8 bytes', () => {
    const codec = codecWith({ maxStrLength: 4 });
    expect(codec.decode(codec.encode('abcd'))).toBe('abcd');
    expect(codec.decode(codec.encode('éé'))).toBe('éé'); // 4 bytes
    expectPayloadError(() => codec.decode(codec.encode('abcde')), 'HW_ERR_BAD_PAYLOAD');
    expectPayloadError(() => codec.decode(codec.encode('ééa')), 'HW_ERR_BAD_PAYLOAD'); // 3 chars, 5 bytes
  });

  it('maxStrLength applies to map keys too', () => {
    const codec = codecWith({ maxStrLength: 4 });
    expectPayloadError(() => codec.decode(codec.encode({ longkey: 1 })), 'HW_ERR_BAD_PAYLOAD');
  });

  it('maxBinLength', () => {
    const codec = codecWith({ maxBinLength: 2 });
    expect(Array.from(codec.decode(codec.encode(new Uint8Array([1, 2]))) as Uint8Array)).toEqual([1, 2]);
    expectPayloadError(() => codec.decode(codec.encode(new Uint8Array([1, 2, 3]))), 'HW_ERR_BAD_PAYLOAD');
  });

  it('maxMapLength', () => {
    const codec = codecWith({ maxMapLength: 2 });
    expect(codec.decode(codec.encode({ a: 1, b: 2 }))).toEqual({ a: 1, b: 2 });
    expectPayloadError(() => codec.decode(codec.encode({ a: 1, b: 2, c: 3 })), 'HW_ERR_BAD_PAYLOAD');
  });

  it('limits apply to nested items', () => {
    const codec = codecWith({ maxArrayLength: 2 });
    expectPayloadError(() => codec.decode(hex('92 01 93 01 02 03')), 'HW_ERR_BAD_PAYLOAD');
  });
});

describe('PayloadCodec: prototype safety', () => {
  const codec = new PayloadCodec();

  it('a map with a __proto__ key is rejected', () => {
    // { "__proto__": { "polluted": true } }
    const bytes = hex('81 a9' + toHex(new TextEncoder().encode('__proto__')) + '81 a8' + toHex(new TextEncoder().encode('polluted')) + 'c3');
    expectPayloadError(() => codec.decode(bytes), 'HW_ERR_BAD_PAYLOAD');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a nested __proto__ key is rejected too', () => {
    const inner = '81 a9' + toHex(new TextEncoder().encode('__proto__')) + '01';
    const bytes = hex('81 a1 78' + inner); // { x: { __proto__: 1 } }
    expectPayloadError(() => codec.decode(bytes), 'HW_ERR_BAD_PAYLOAD');
  });

  it('a "constructor" key whose value is a map with a "prototype" key is rejected, at any depth', () => {
    // The pair a careless deep merge follows to Object.prototype.
    for (const value of [
      { constructor: { prototype: { polluted: true } } },
      { a: [1, { constructor: { prototype: {} } }] },
      [{ x: { constructor: { prototype: null, other: 1 } } }],
    ]) {
      const err = expectPayloadError(() => codec.decode(codec.encode(value)), 'HW_ERR_BAD_PAYLOAD');
      expect(err.message).toMatch(/constructor\.prototype/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.constructor).toBe(Object);
  });

  it('a "constructor" or "prototype" key alone is plain own data', () => {
    for (const value of [
      { constructor: 1 },
      { constructor: { name: 'x' } },
      { constructor: [{ prototype: 1 }] },
      { prototype: { constructor: 1 } },
      { a: { constructor: 'Object', prototype: 'p' } },
    ]) {
      const out = codec.decode(codec.encode(value)) as Record<string, unknown>;
      expect(out).toEqual(value);
      expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    }
    expect(Object.prototype.constructor).toBe(Object);
  });

  it('the decoder keeps working after refusing a constructor.prototype pair', () => {
    expectPayloadError(() => codec.decode(codec.encode({ constructor: { prototype: 1 } })), 'HW_ERR_BAD_PAYLOAD');
    expect(codec.decode(codec.encode({ constructor: 2 }))).toEqual({ constructor: 2 });
    expect(codec.decode(codec.encode({ plain: true }))).toEqual({ plain: true });
  });
});

describe('PayloadCodec: decode depth limit', () => {
  const nested = (levels: number, leaf: unknown = 0): unknown => {
    let value = leaf;
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };

  it('the decoder accepts exactly what the encoder writes: default 100 levels', () => {
    const codec = new PayloadCodec();
    // 99 arrays and a scalar leaf: 100 levels.
    const deepest = nested(99);
    expect(codec.decode(codec.encode(deepest))).toEqual(deepest);
    // 100 arrays around a leaf, written by hand (the encoder refuses it): 101 levels.
    const bytes = new Uint8Array(101).fill(0x91);
    bytes[100] = 0x00;
    const err = expectPayloadError(() => codec.decode(bytes), 'HW_ERR_BAD_PAYLOAD');
    expect(err.message).toMatch(/deeper than 100 levels/);
  });

  it('4 MiB of 0x91 (4 million nested arrays) is refused at the 100th level, not built', () => {
    const codec = new PayloadCodec();
    const bytes = new Uint8Array(4 * 1024 * 1024).fill(0x91);
    expectPayloadError(() => codec.decode(bytes), 'HW_ERR_BAD_PAYLOAD');
    expect(codec.decode(codec.encode([1]))).toEqual([1]);
  });

  it('maps count as levels, and an empty innermost container is fine', () => {
    const codec = codecWith({ maxDepth: 3 });
    expect(codec.decode(codec.encode({ a: { b: 1 } }))).toEqual({ a: { b: 1 } });
    expect(codec.decode(codec.encode([[[]]]))).toEqual([[[]]]);
    expect(codec.decode(codec.encode([{}, [0]]))).toEqual([{}, [0]]);
    // Written by the default encoder, one level too deep for this decoder.
    const wide = new PayloadCodec();
    expectPayloadError(() => codec.decode(wide.encode({ a: { b: { c: 1 } } })), 'HW_ERR_BAD_PAYLOAD');
    expectPayloadError(() => codec.decode(wide.encode([[[0]]])), 'HW_ERR_BAD_PAYLOAD');
    expectPayloadError(() => codec.decode(wide.encode([1, [2, [3, [4]]]])), 'HW_ERR_BAD_PAYLOAD');
    // The depth is per path, not a count of containers.
    expect(codec.decode(wide.encode([[1], [2], { a: 3 }]))).toEqual([[1], [2], { a: 3 }]);
  });

  it('maxDepth 1: scalars and empty containers only', () => {
    const codec = codecWith({ maxDepth: 1 });
    expect(codec.decode(codec.encode('x'))).toBe('x');
    expect(codec.decode(codec.encode([]))).toEqual([]);
    expect(codec.decode(codec.encode({}))).toEqual({});
    expectPayloadError(() => codec.decode(new PayloadCodec().encode([1])), 'HW_ERR_BAD_PAYLOAD');
  });
});

describe('PayloadCodec: encode errors are PayloadError HW_ERR_ENCODE', () => {
  const codec = new PayloadCodec();

  it('a function', () => {
    const err = expectPayloadError(() => codec.encode(() => 1), 'HW_ERR_ENCODE');
    expect(err.cause).toBeInstanceOf(Error);
    expect(err.message).toMatch(/cannot be encoded/);
  });

  it('a function nested in a structure', () => {
    expectPayloadError(() => codec.encode({ a: [1, { f: function named() {} }] }), 'HW_ERR_ENCODE');
  });

  it('a symbol', () => {
    expectPayloadError(() => codec.encode(Symbol('s')), 'HW_ERR_ENCODE');
  });

  it('a structure deeper than maxDepth (default 100)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < DEFAULT_CODEC_LIMITS.maxDepth + 5; i++) deep = [deep];
    expectPayloadError(() => codec.encode(deep), 'HW_ERR_ENCODE');
  });

  it('a cycle is refused (hits maxDepth) instead of overflowing the stack', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expectPayloadError(() => codec.encode(a), 'HW_ERR_ENCODE');
  });

  it('a configured maxDepth: every nesting level counts, the scalar leaf included', () => {
    const limited = codecWith({ maxDepth: 3 });
    // [[0]]: two arrays and a leaf = 3 levels; [[[]]]: three (empty) arrays = 3 levels.
    expect(limited.decode(limited.encode([[0]]))).toEqual([[0]]);
    expect(limited.decode(limited.encode([[[]]]))).toEqual([[[]]]);
    expect(limited.decode(limited.encode({ a: { b: 1 } }))).toEqual({ a: { b: 1 } });
    // One level more.
    expectPayloadError(() => limited.encode([[[0]]]), 'HW_ERR_ENCODE');
    expectPayloadError(() => limited.encode({ a: { b: { c: 1 } } }), 'HW_ERR_ENCODE');
    expectPayloadError(() => limited.encode([[[[]]]]), 'HW_ERR_ENCODE');
  });
});

describe('resolveCodecLimits', () => {
  it('returns the defaults when given nothing, frozen', () => {
    const limits = resolveCodecLimits();
    expect(limits).toEqual(DEFAULT_CODEC_LIMITS);
    expect(Object.isFrozen(limits)).toBe(true);
    expect(Object.isFrozen(DEFAULT_CODEC_LIMITS)).toBe(true);
  });

  it('fills in the defaults around the given values', () => {
    const limits = resolveCodecLimits({ maxStrLength: 10, maxDepth: 7 });
    expect(limits).toEqual({ ...DEFAULT_CODEC_LIMITS, maxStrLength: 10, maxDepth: 7 });
  });

  const bad: [keyof CodecLimits, unknown][] = [
    ['maxStrLength', 0],
    ['maxBinLength', -1],
    ['maxArrayLength', 1.5],
    ['maxMapLength', Number.NaN],
    ['maxDepth', '10'],
    ['maxStrLength', Infinity],
    ['maxBinLength', null],
    ['maxArrayLength', 2 ** 53],
    ['maxMapLength', {}],
  ];

  for (const [key, value] of bad) {
    it(`rejects ${key} = ${typeof value === 'string' ? JSON.stringify(value) : String(value)} with a message naming the option`, () => {
      const err = catchError(() => resolveCodecLimits({ [key]: value } as Partial<CodecLimits>));
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect(err).toBeInstanceOf(HeartwireError);
      expect((err as InvalidOptionError).code).toBe('HW_ERR_INVALID_OPTION');
      expect((err as InvalidOptionError).name).toBe('InvalidOptionError');
      expect((err as InvalidOptionError).message).toContain(`codec.${key}`);
    });
  }

  it('the message uses the given option prefix', () => {
    const err = catchError(() => resolveCodecLimits({ maxDepth: 0 }, 'server.codec'));
    expect((err as InvalidOptionError).message).toContain('server.codec.maxDepth');
    expect((err as InvalidOptionError).message).toContain('got 0');
  });

  it('refuses an unknown or misspelled limit, naming it', () => {
    const misspelled = catchError(() => resolveCodecLimits({ maxdepth: 5 } as Partial<CodecLimits>));
    expect(misspelled).toBeInstanceOf(InvalidOptionError);
    expect((misspelled as Error).message).toBe('unknown option codec.maxdepth (did you mean codec.maxDepth?)');
    const unknown = catchError(() => resolveCodecLimits({ maxKeys: 5 } as Partial<CodecLimits>, 'server.codec'));
    expect((unknown as Error).message).toMatch(/^unknown option server\.codec\.maxKeys \(known options: server\.codec\.maxStrLength, /);
  });

  it('accepts the minimum of 1 for every limit', () => {
    const ones = { maxStrLength: 1, maxBinLength: 1, maxArrayLength: 1, maxMapLength: 1, maxDepth: 1 };
    expect(resolveCodecLimits(ones)).toEqual(ones);
  });
});

describe('PayloadCodec: 64-bit integers are exact', () => {
  const codec = new PayloadCodec();
  const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
  const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

  it('a safe integer decodes as a number whatever its format; past 2^53 as a bigint', () => {
    expect(codec.decode(hex('cf 00 00 00 00 00 00 00 07'))).toBe(7);
    expect(codec.decode(hex('d3 ff ff ff ff ff ff ff f9'))).toBe(-7);
    expect(codec.decode(hex('cf 00 1f ff ff ff ff ff ff'))).toBe(Number.MAX_SAFE_INTEGER);
    expect(codec.decode(hex('cf 00 20 00 00 00 00 00 01'))).toBe(2n ** 53n + 1n);
    expect(codec.decode(hex('d3 ff df ff ff ff ff ff ff'))).toBe(-(2n ** 53n) - 1n);
  });

  it('64-bit ids round trip exactly, in maps and arrays too', () => {
    const ids = [2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 53n), -(2n ** 63n), 1234567890123456789n];
    for (const id of ids) expect(codec.decode(codec.encode(id))).toBe(id);
    expect(codec.decode(codec.encode({ ids, first: ids[0] }))).toEqual({ ids, first: ids[0] });
  });

  it('a safe bigint is written as the smallest integer format and comes back a number', () => {
    expect(toHex(codec.encode(5n))).toBe('05');
    expect(toHex(codec.encode(-300n))).toBe('d1fed4');
    expect(toHex(codec.encode(2n ** 32n))).toBe('cf0000000100000000');
    expect(codec.decode(codec.encode(BigInt(Number.MAX_SAFE_INTEGER)))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('every 64-bit pattern decodes to its exact value, and encodes back to it', () => {
    // A fixed-seed xorshift: 4000 patterns across the whole range, the same on every run.
    let x = 0x2545f4914f6cdd1dn;
    const mask = 2n ** 64n - 1n;
    for (let i = 0; i < 4000; i++) {
      x ^= (x << 13n) & mask;
      x ^= x >> 7n;
      x ^= (x << 17n) & mask;
      // Shift some patterns right, so that small and safe values are drawn too.
      const bits = x >> BigInt(i % 64);
      const bytes = new Uint8Array(9);
      new DataView(bytes.buffer).setBigUint64(1, bits);
      for (const [head, exact] of [
        [0xcf, bits],
        [0xd3, BigInt.asIntN(64, bits)],
      ] as const) {
        bytes[0] = head;
        const value = codec.decode(bytes) as number | bigint;
        expect(typeof value === 'number' ? Number.isSafeInteger(value) : value < MIN_SAFE || value > MAX_SAFE).toBe(true);
        expect(BigInt(value)).toBe(exact);
        expect(BigInt(codec.decode(codec.encode(value)) as number | bigint)).toBe(exact);
      }
    }
  });

  it('a bigint past 64 bits is refused with HW_ERR_ENCODE', () => {
    expect(expectPayloadError(() => codec.encode(2n ** 64n), 'HW_ERR_ENCODE').message).toMatch(/64 bits/);
    expectPayloadError(() => codec.encode({ id: -(2n ** 63n) - 1n }), 'HW_ERR_ENCODE');
  });

  it('numbers: safe integers as integers (-0 as 0), the rest as float64; float32 is read widened', () => {
    expect(toHex(codec.encode(2 ** 32))).toBe('cf0000000100000000');
    expect(toHex(codec.encode(-0))).toBe('00');
    expect(toHex(codec.encode(2 ** 53))).toBe('cb4340000000000000');
    expect(toHex(codec.encode(0.5))).toBe('cb3fe0000000000000');
    expect(codec.decode(hex('ca 3d cc cc cd'))).toBe(Math.fround(0.1));
  });
});

describe('PayloadCodec: map keys are strings, each once per map', () => {
  const codec = new PayloadCodec();

  it.each<[string, string, RegExp]>([
    ['an integer key', '81 01 a0', /got a number/],
    ['a negative integer key', '81 ff a0', /got a number/],
    ['a float key', '81 cb 3ff8000000000000 a0', /got a number/],
    ['a nil key', '81 c0 a0', /got nil/],
    ['a binary key', '81 c4 01 61 01', /got binary/],
    ['a boolean key', '81 c3 01', /got a boolean/],
    ['an array key', '81 91 01 01', /got an array/],
    ['a map key', '81 81 a1 61 01 01', /got a map/],
    ['a bigint key', '81 cf ffffffffffffffff 01', /got a bigint/],
    ['a duplicate key', '82 a1 61 01 a1 61 02', /"a" appears twice/],
    ['a duplicate key in a nested map', '81 a1 78 83 a1 61 01 a1 62 02 a1 61 03', /"a" appears twice/],
    ['a duplicate key named like an Object.prototype member', '82 a8 746f537472696e67 01 a8 746f537472696e67 02', /appears twice/],
  ])('%s is refused with HW_ERR_BAD_PAYLOAD', (_name, bytes, message) => {
    expect(expectPayloadError(() => codec.decode(hex(bytes)), 'HW_ERR_BAD_PAYLOAD').message).toMatch(message);
  });

  it('keys named like Object.prototype members are own data, once each', () => {
    const value = { toString: 1, valueOf: 2, hasOwnProperty: 3, constructor: 4 };
    expect(codec.decode(codec.encode(value))).toEqual(value);
  });

  it('the same key in sibling and nested maps is fine', () => {
    const value = { a: { a: { a: 1 } }, b: [{ a: 1 }, { a: 2 }] };
    expect(codec.decode(codec.encode(value))).toEqual(value);
  });

  it('keeps working after a refused key', () => {
    expectPayloadError(() => codec.decode(hex('82 a1 61 01 a1 61 02')), 'HW_ERR_BAD_PAYLOAD');
    expect(codec.decode(hex('82 a1 61 01 a1 62 02'))).toEqual({ a: 1, b: 2 });
  });
});

describe('PayloadCodec: timestamps are Dates, to the millisecond', () => {
  const codec = new PayloadCodec();

  it('a Date round trips in the shortest timestamp form', () => {
    const cases: [Date, string][] = [
      [new Date(0), 'd6ff00000000'],
      [new Date(1_700_000_000_000), 'd6ff6553f100'],
      [new Date(1_700_000_000_123), 'd7ff1d5353006553f100'],
      [new Date(-1), 'c70cff3b8b87c0ffffffffffffffff'],
      [new Date(Date.UTC(2200, 0, 1)), 'd7ff00000001b09e1900'],
    ];
    for (const [date, bytes] of cases) {
      expect(toHex(codec.encode(date))).toBe(bytes);
      const out = codec.decode(hex(bytes));
      expect(out).toBeInstanceOf(Date);
      expect((out as Date).getTime()).toBe(date.getTime());
    }
  });

  it('the sub-millisecond part is dropped, rounding toward the past', () => {
    // timestamp 64: 1.999999 ms after the epoch.
    expect((codec.decode(hex('d7ff 007a11fc 00000000')) as Date).getTime()).toBe(1);
    // timestamp 96: -1 s + 999,999,999 ns, 1 ns before the epoch.
    expect((codec.decode(hex('c70cff 3b9ac9ff ffffffffffffffff')) as Date).getTime()).toBe(-1);
  });

  it('a Date nested in params round trips', () => {
    const value = { at: new Date(1_234_567), list: [new Date(0)] };
    expect(codec.decode(codec.encode(value))).toEqual(value);
  });

  it('refuses a bad timestamp: nanoseconds of a second or more, a size other than 4, 8, 12, outside a Date', () => {
    expectPayloadError(() => codec.decode(hex('d7ff ee6b2800 00000000')), 'HW_ERR_BAD_PAYLOAD');
    expectPayloadError(() => codec.decode(hex('d5ff 0000')), 'HW_ERR_BAD_PAYLOAD');
    expectPayloadError(() => codec.decode(hex('c70cff 00000000 000007dba8218001')), 'HW_ERR_BAD_PAYLOAD');
    expect((codec.decode(hex('c70cff 00000000 000007dba8218000')) as Date).getTime()).toBe(8.64e15);
  });

  it('an invalid Date is refused with HW_ERR_ENCODE', () => {
    expectPayloadError(() => codec.encode(new Date(Number.NaN)), 'HW_ERR_ENCODE');
  });

  it('any other extension type is refused, whatever its size', () => {
    for (const bytes of ['d4 01 00', 'd5 7f 0000', 'c7 00 05', 'd6 fe 00000000', 'c8 0001 02 00']) {
      expect(expectPayloadError(() => codec.decode(hex(bytes)), 'HW_ERR_BAD_PAYLOAD').message).toMatch(/extension type/);
    }
  });
});

describe('PayloadCodec: nil and empty payloads', () => {
  const codec = new PayloadCodec();

  it('undefined is written as nil, at the top and inside; nil decodes as null', () => {
    expect(toHex(codec.encode(undefined))).toBe('c0');
    expect(toHex(codec.encode([undefined]))).toBe('91c0');
    expect(codec.decode(hex('c0'))).toBeNull();
  });

  it('an empty payload is not a value', () => {
    expectPayloadError(() => codec.decode(new Uint8Array(0)), 'HW_ERR_BAD_PAYLOAD');
  });
});

describe('PayloadCodec.encodeTuple', () => {
  it('holds each item, not the array, to maxDepth', () => {
    const codec = codecWith({ maxDepth: 3 });
    expect(toHex(codec.encodeTuple(['m', [[0]]]))).toBe('92a16d919100');
    expectPayloadError(() => codec.encodeTuple(['m', [[[0]]]]), 'HW_ERR_ENCODE');
    expectPayloadError(() => codec.encode(['m', [[0]]]), 'HW_ERR_ENCODE');
  });
});

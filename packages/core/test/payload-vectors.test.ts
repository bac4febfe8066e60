import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeCall, encodeCall, PayloadCodec, PayloadError } from '@heartwire/core';
import { toHex } from './hex.js';
import { catchError } from './thrown.js';

interface SpecRow {
  readonly bytes: Uint8Array;
  readonly bothWays: boolean;
}

/** The vector table of PROTOCOL.md section 10: name, bytes (`XX×N` repeats), outcome, both ways. */
function vectorsFromSpec(): Map<string, SpecRow> {
  const text = readFileSync(new URL('../../../PROTOCOL.md', import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('## 10. '), text.indexOf('## 11. '));
  const out = new Map<string, SpecRow>();
  for (const match of section.matchAll(/^\| `([a-z0-9-]+)` \| (`[^`]*`|\(none\)) \| .* \| (yes|no|—) \|$/gm)) {
    const cell = match[2] as string;
    const tokens = cell === '(none)' ? [] : cell.slice(1, -1).split(/\s+/);
    const hex = tokens.map((token) => {
      const [bytes, times] = token.split('×') as [string, string | undefined];
      return bytes.repeat(times === undefined ? 1 : Number(times));
    });
    out.set(match[1] as string, { bytes: Uint8Array.from(Buffer.from(hex.join(''), 'hex')), bothWays: match[3] === 'yes' });
  }
  return out;
}

const codec = new PayloadCodec();
const MAX_METHOD_LENGTH = 256;

function nested(levels: number): unknown {
  let value: unknown = 0;
  for (let i = 1; i < levels; i++) value = [value];
  return value;
}

/** What a row decodes to (`value`, which a both-ways row also encodes from), or the code it is refused with. */
type Expectation = { readonly value: unknown } | { readonly code: 'HW_ERR_BAD_PAYLOAD' };
const refused = { code: 'HW_ERR_BAD_PAYLOAD' } as const;
const call = (method: string, params: unknown) => ({ value: { method, params } });

const expectations: Record<string, Expectation> = {
  'uint64-safe-max': { value: 2 ** 53 - 1 },
  'uint64-past-safe': { value: 2n ** 53n },
  'uint64-max': { value: 2n ** 64n - 1n },
  'int64-safe-min': { value: -(2 ** 53 - 1) },
  'int64-past-safe': { value: -(2n ** 53n) },
  'int64-min': { value: -(2n ** 63n) },
  'uint64-small': { value: 1 },
  'float64-past-safe': { value: 2 ** 53 },
  float32: { value: 1.5 },
  'map-int-key': refused,
  'map-nil-key': refused,
  'map-bin-key': refused,
  'map-duplicate-key': refused,
  'map-key-in-two-maps': { value: [{ a: 1 }, { a: 2 }] },
  nil: { value: null },
  empty: refused,
  'timestamp-32': { value: new Date(0) },
  'timestamp-64': { value: new Date(1) },
  'timestamp-64-sub-ms': { value: new Date(1) },
  'timestamp-96': { value: new Date(-1) },
  'timestamp-96-sub-ms': { value: new Date(-1000) },
  'timestamp-bad-nanoseconds': refused,
  'timestamp-out-of-range': refused,
  'ext-unknown': refused,
  'depth-at-limit': { value: nested(100) },
  'depth-past-limit': refused,
  'call-depth-at-limit': call('m', nested(100)),
  'call-depth-past-limit': refused,
  'call-array16': call('m', null),
  'call-method-utf8': call('é', null),
  'call-method-at-limit': call('é'.repeat(128), null),
  'call-method-past-limit': refused,
  'call-method-empty': refused,
  'call-method-bad-utf8': refused,
  'call-method-binary': refused,
  'call-no-params': refused,
};

function decode(name: string, bytes: Uint8Array): unknown {
  return name.startsWith('call-') ? decodeCall(codec, bytes, MAX_METHOD_LENGTH) : codec.decode(bytes);
}

function encode(name: string, value: unknown): Uint8Array {
  if (!name.startsWith('call-')) return codec.encode(value);
  const { method, params } = value as { method: string; params: unknown };
  return encodeCall(codec, method, params);
}

const vectors = vectorsFromSpec();

describe('PROTOCOL.md section 10 payload vectors', () => {
  it('the spec shows exactly the vectors checked here', () => {
    expect([...vectors.keys()].sort()).toEqual(Object.keys(expectations).sort());
  });

  for (const [name, row] of vectors) {
    const expected = expectations[name];
    it(`${name}: ${expected !== undefined && 'code' in expected ? `refused with ${expected.code}` : 'decodes to its value'}${row.bothWays ? ', and encodes back to the same bytes' : ''}`, () => {
      expect(expected).toBeDefined();
      if (expected === undefined) return;
      if ('code' in expected) {
        expect(row.bothWays).toBe(false);
        const err = catchError(() => decode(name, row.bytes));
        expect(err).toBeInstanceOf(PayloadError);
        expect((err as PayloadError).code).toBe(expected.code);
        return;
      }
      expect(decode(name, row.bytes)).toEqual(expected.value);
      const written = toHex(encode(name, expected.value));
      if (row.bothWays) expect(written).toBe(toHex(row.bytes));
      else expect(written).not.toBe(toHex(row.bytes));
    });
  }
});

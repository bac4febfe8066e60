import { Decoder, DecodeError, Encoder } from '@msgpack/msgpack';
import { InvalidOptionError, PayloadError } from './errors/index.js';
import { checkIntegerOption, checkKnownOptions, withDefaults } from './options.js';
import { PAYLOAD_EXTENSIONS } from './payload-extensions.js';

/** Limits applied while decoding a MessagePack payload; each is checked before the item's body is read. */
export interface CodecLimits {
  /** Longest string, in UTF-8 bytes. */
  readonly maxStrLength: number;
  /** Longest binary item, in bytes. */
  readonly maxBinLength: number;
  /** Most elements in one array. */
  readonly maxArrayLength: number;
  /** Most entries in one map. */
  readonly maxMapLength: number;
  /**
   * Deepest nesting, in levels (a scalar alone is 1, `[1]` is 2): the encoder
   * writes no deeper, and the decoder refuses deeper input, so no decoded
   * value is too deep for the encoder or for a recursive walk by a handler.
   * A CALL's params are counted alone, without their `[method, params]` wrapper.
   */
  readonly maxDepth: number;
}

/**
 * Defaults of {@link CodecLimits}. A payload is already bounded by the frame
 * size limit; these stop a small payload from asking for a huge allocation
 * (an array header claiming 4 billion items costs 5 bytes).
 */
export const DEFAULT_CODEC_LIMITS: CodecLimits = Object.freeze({
  maxStrLength: 4 * 1024 * 1024,
  maxBinLength: 4 * 1024 * 1024,
  maxArrayLength: 1_000_000,
  maxMapLength: 1_000_000,
  // Same as @msgpack/msgpack's encoder default.
  maxDepth: 100,
});

/** Checks user-supplied codec limits and fills in defaults. */
export function resolveCodecLimits(limits: Partial<CodecLimits> = {}, optionPrefix = 'codec'): CodecLimits {
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
    throw new InvalidOptionError(`option ${optionPrefix} must be an object`);
  }
  checkKnownOptions(limits, Object.keys(DEFAULT_CODEC_LIMITS), `${optionPrefix}.`);
  const out = withDefaults<CodecLimits>(DEFAULT_CODEC_LIMITS, limits);
  for (const key of Object.keys(DEFAULT_CODEC_LIMITS) as (keyof CodecLimits)[]) {
    checkIntegerOption(`${optionPrefix}.${key}`, out[key], 1);
  }
  return Object.freeze(out);
}

/** What a platform can lend a {@link PayloadCodec} for speed; the Node adapters lend both. */
export interface CodecHost {
  /**
   * Gives the buffer each encoding is copied into; by default a new
   * Uint8Array, an ArrayBuffer of its own for every payload. Node's
   * `Buffer.allocUnsafe` hands out slices of a shared slab: no ArrayBuffer
   * per call (a third of an encoding's cost, and less work for the
   * collector). A caller that keeps an encoding long should copy it, or it
   * keeps the slab.
   */
  readonly allocate?: (size: number) => Uint8Array;
  /**
   * Decodes `bytes[start, end)` as UTF-8, for string values (map keys go
   * through the decoder's key cache). By default @msgpack/msgpack's
   * JavaScript loop, which builds an array of char codes per string; Node's
   * `Buffer` decodes in C++ with no such garbage. Invalid bytes may come out
   * differently (PROTOCOL.md section 10 leaves them unspecified).
   */
  readonly decodeUtf8?: (bytes: Uint8Array, start: number, end: number) => string;
}

/**
 * MessagePack payload codec (the rules of PROTOCOL.md section 10). One encoder
 * and one decoder instance are reused for every payload (they are not
 * re-entrant, and neither call re-enters).
 *
 * - Integers: a `bigint` encodes as the smallest integer format that holds it
 *   (int64/uint64 past 2^53); an integer of any format decodes as a `number`
 *   when it is a safe integer, as a `bigint` otherwise, so no 64-bit id is
 *   rounded. Other numbers encode as float64.
 * - Map keys are strings, each once in its map: any other key, and a repeated
 *   key, are refused (a JavaScript object cannot keep `1` and `"1"` apart, nor
 *   two values of one key).
 * - Decoded objects cannot pollute prototypes: `__proto__` map keys are refused
 *   by @msgpack/msgpack, and a `constructor` key whose value is a map with a
 *   `prototype` key is refused here (the pair a careless deep merge follows to
 *   `Object.prototype`; fastify's secure-json-parse refuses the same two).
 * - Extensions: the timestamp only, as a `Date` ({@link PAYLOAD_EXTENSIONS}).
 */
export class PayloadCodec {
  private readonly encoder: Encoder;
  /** Writes arrays whose items, not the array, are held to `maxDepth` (see {@link encodeTuple}). */
  private readonly tupleEncoder: Encoder;
  private readonly decoder: PayloadDecoder;

  private readonly allocate: ((size: number) => Uint8Array) | undefined;

  /** `host` lends the codec faster ways of the platform it runs on (see {@link CodecHost}); without it, plain JavaScript. */
  constructor(limits: CodecLimits = DEFAULT_CODEC_LIMITS, host: CodecHost = {}) {
    this.encoder = new PayloadEncoder(limits.maxDepth);
    this.tupleEncoder = new PayloadEncoder(limits.maxDepth + 1);
    this.decoder = new PayloadDecoder(limits, host.decodeUtf8);
    this.allocate = host.allocate;
  }

  /** Encodes `value` into a new buffer. Throws {@link PayloadError} `HW_ERR_ENCODE`. */
  encode(value: unknown): Uint8Array {
    return encodeWith(this.encoder, value, this.allocate);
  }

  /**
   * Encodes `items` as one MessagePack array whose items each meet the limits
   * on their own: the array is not counted in the nesting depth. This is how
   * a frame body that wraps a value is written, such as CALL's
   * `[method, params]`. Throws {@link PayloadError} `HW_ERR_ENCODE`.
   */
  encodeTuple(items: readonly unknown[]): Uint8Array {
    return encodeWith(this.tupleEncoder, items, this.allocate);
  }

  /** Decodes exactly one value filling `bytes`. Throws {@link PayloadError} `HW_ERR_BAD_PAYLOAD`. */
  decode(bytes: Uint8Array): unknown {
    try {
      this.decoder.sawConstructorKey = false;
      const value = this.decoder.decode(bytes);
      // Only a payload that has a "constructor" key pays for the walk.
      if (this.decoder.sawConstructorKey) refuseConstructorPrototype(value);
      return value;
    } catch (err) {
      throw new PayloadError('HW_ERR_BAD_PAYLOAD', `payload is not valid MessagePack: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

function encodeWith(encoder: Encoder, value: unknown, allocate: ((size: number) => Uint8Array) | undefined): Uint8Array {
  try {
    if (allocate === undefined) return encoder.encode(value);
    // A view of the encoder's own buffer, good until its next encoding: copied out at once.
    const shared = encoder.encodeSharedRef(value);
    const out = allocate(shared.byteLength);
    out.set(shared);
    return out;
  } catch (err) {
    throw new PayloadError('HW_ERR_ENCODE', `value cannot be encoded as MessagePack: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

const MIN_SAFE_BIGINT = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/** The private members of @msgpack/msgpack 3's Encoder that this module relies on. */
interface EncoderInternals {
  encodeObject(object: unknown, depth: number): void;
  encodeNumber(value: number): void;
  encodeBigInt64(value: bigint): void;
}

/**
 * @msgpack/msgpack writes a `bigint` only with `useBigInt64`, which also
 * writes every safe integer past 2^32 as a float64. This subclass keeps
 * integers as integers and catches a `bigint` where the library sends every
 * value that is not a primitive it knows (`encodeObject`, once per container
 * otherwise): a safe one is written as that number, a wider one as
 * int64/uint64, and one past 64 bits is refused.
 */
class PayloadEncoder extends Encoder {
  constructor(maxDepth: number) {
    super({ maxDepth, ignoreUndefined: false, extensionCodec: PAYLOAD_EXTENSIONS });
  }
}

const encodeObject = privateMethod(Encoder.prototype as unknown as EncoderInternals, 'encodeObject');
privateMethod(Encoder.prototype as unknown as EncoderInternals, 'encodeNumber');
privateMethod(Encoder.prototype as unknown as EncoderInternals, 'encodeBigInt64');
Object.defineProperty(PayloadEncoder.prototype, 'encodeObject', {
  value(this: EncoderInternals, object: unknown, depth: number): void {
    if (typeof object !== 'bigint') return encodeObject.call(this, object, depth);
    if (object >= MIN_SAFE_BIGINT && object <= MAX_SAFE_BIGINT) return this.encodeNumber(Number(object));
    if (object < MIN_INT64 || object > MAX_UINT64) throw new Error(`bigint ${object} does not fit in 64 bits`);
    return this.encodeBigInt64(object);
  },
});

/** The private members of @msgpack/msgpack 3's Decoder that this module relies on. */
interface DecoderInternals {
  decodeUtf8String(byteLength: number, headerOffset: number): string;
  stateIsMapKey(): boolean;
  readonly bytes: Uint8Array;
  readonly maxStrLength: number;
  pushArrayState(size: number): void;
  pushMapState(size: number): void;
  readU64(): number | bigint;
  readI64(): number | bigint;
  readonly stack: { readonly length: number; top(): { readonly map: object; readonly readCount: number } | undefined };
  readonly maxOpenContainers: number;
  readonly decodeUtf8: ((bytes: Uint8Array, start: number, end: number) => string) | undefined;
  readonly view: DataView;
  pos: number;
}

/**
 * @msgpack/msgpack decodes nesting on its own stack without a depth limit
 * (4 MiB of 0x91 bytes would be 4 million nested arrays), reads a 64-bit
 * integer past 2^53 as a rounded float, and takes number keys. This subclass
 * checks the depth each time a non-empty container opens (one comparison per
 * container), reads int64/uint64 as a `bigint` when the value is not a safe
 * integer (a cost only on those two formats), refuses a key that is not a
 * string or is already in its map (one own-property lookup per key), and
 * notes whether any map key is "constructor". The hooks it wraps are private
 * to the library; the module refuses to load if they are gone, and the codec
 * tests pin the behaviour.
 */
class PayloadDecoder extends Decoder {
  sawConstructorKey = false;
  /** Non-empty containers allowed open at once: their items sit one level deeper. */
  readonly maxOpenContainers: number;

  constructor(
    limits: CodecLimits,
    /** The host's UTF-8 decoder for string values, if it lent one (see decodeUtf8String below). */
    readonly decodeUtf8: ((bytes: Uint8Array, start: number, end: number) => string) | undefined,
  ) {
    super({
      maxStrLength: limits.maxStrLength,
      maxBinLength: limits.maxBinLength,
      maxArrayLength: limits.maxArrayLength,
      maxMapLength: limits.maxMapLength,
      maxExtLength: limits.maxBinLength,
      extensionCodec: PAYLOAD_EXTENSIONS,
      mapKeyConverter: (key) => {
        if (typeof key !== 'string') throw new DecodeError(`a map key must be a string, got ${describeKey(key)}`);
        // The converter runs while the map being filled is on top of the stack; its first key cannot repeat.
        const state = (this as unknown as DecoderInternals).stack.top();
        if (state !== undefined && state.readCount > 0 && Object.hasOwn(state.map, key)) {
          throw new DecodeError(`map key ${JSON.stringify(key)} appears twice`);
        }
        if (key === 'constructor') this.sawConstructorKey = true;
        return key;
      },
    });
    this.maxOpenContainers = limits.maxDepth - 1;
  }
}

for (const hook of ['pushArrayState', 'pushMapState'] as const) {
  const original = privateMethod(Decoder.prototype as unknown as DecoderInternals, hook);
  Object.defineProperty(PayloadDecoder.prototype, hook, {
    value(this: DecoderInternals, size: number): void {
      if (this.stack.length >= this.maxOpenContainers) {
        throw new DecodeError(`nesting deeper than ${this.maxOpenContainers + 1} levels`);
      }
      original.call(this, size);
    },
  });
}

// A string value whole in the buffer goes to the host's decoder; a map key, a string over maxStrLength
// (refused there) or one cut short (MORE_DATA) takes the library's own path.
const libraryDecodeUtf8String = privateMethod(Decoder.prototype as unknown as DecoderInternals, 'decodeUtf8String');
privateMethod(Decoder.prototype as unknown as DecoderInternals, 'stateIsMapKey');
Object.defineProperty(PayloadDecoder.prototype, 'decodeUtf8String', {
  value(this: DecoderInternals, byteLength: number, headerOffset: number): string {
    const start = this.pos + headerOffset;
    const end = start + byteLength;
    if (this.decodeUtf8 === undefined || byteLength > this.maxStrLength || end > this.bytes.byteLength || this.stateIsMapKey()) {
      return libraryDecodeUtf8String.call(this, byteLength, headerOffset);
    }
    this.pos = end;
    return this.decodeUtf8(this.bytes, start, end);
  },
});

privateMethod(Decoder.prototype as unknown as DecoderInternals, 'readU64');
privateMethod(Decoder.prototype as unknown as DecoderInternals, 'readI64');
Object.defineProperty(PayloadDecoder.prototype, 'readU64', {
  value(this: DecoderInternals): number | bigint {
    const { view, pos } = this;
    // Rounded when past 2^53, and then not a safe integer: the rounding never makes an unsafe value look safe.
    const value = view.getUint32(pos) * 0x1_0000_0000 + view.getUint32(pos + 4);
    this.pos = pos + 8;
    return Number.isSafeInteger(value) ? value : view.getBigUint64(pos);
  },
});
Object.defineProperty(PayloadDecoder.prototype, 'readI64', {
  value(this: DecoderInternals): number | bigint {
    const { view, pos } = this;
    const value = view.getInt32(pos) * 0x1_0000_0000 + view.getUint32(pos + 4);
    this.pos = pos + 8;
    return Number.isSafeInteger(value) ? value : view.getBigInt64(pos);
  },
});

/** A private method of @msgpack/msgpack this module wraps or calls; the module refuses to load without it. */
function privateMethod<T, K extends keyof T & string>(prototype: T, name: K): T[K] {
  const method = prototype[name];
  if (typeof method !== 'function') {
    throw new Error(`@msgpack/msgpack has no ${name}: the payload rules cannot be enforced`);
  }
  return method;
}

function describeKey(key: unknown): string {
  if (key === null) return 'nil';
  if (key instanceof Uint8Array) return 'binary';
  if (Array.isArray(key)) return 'an array';
  return typeof key === 'object' ? 'a map' : `a ${typeof key}`;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array) &&
    !(value instanceof Date)
  );
}

/** Throws if any map in `value` has a "constructor" key whose value is a map with a "prototype" key. */
function refuseConstructorPrototype(value: unknown): void {
  // An explicit stack, not recursion: the walk never depends on the call stack.
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (Array.isArray(item)) {
      for (const element of item) pending.push(element);
    } else if (isMap(item)) {
      const ctor = Object.hasOwn(item, 'constructor') ? item.constructor : undefined;
      if (isMap(ctor) && Object.hasOwn(ctor, 'prototype')) {
        throw new DecodeError('the key pair constructor.prototype is not allowed');
      }
      for (const key of Object.keys(item)) pending.push(item[key]);
    }
  }
}

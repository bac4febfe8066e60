import { Decoder, DecodeError, Encoder } from '@msgpack/msgpack';
import { InvalidOptionError, PayloadError } from './errors/index.js';
import { checkIntegerOption, checkKnownOptions, withDefaults } from './options.js';

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

/**
 * MessagePack payload codec. One encoder and one decoder instance are reused
 * for every payload (they are not re-entrant, and neither call re-enters).
 *
 * Decoded objects cannot pollute prototypes: `__proto__` map keys are refused
 * by @msgpack/msgpack, and a `constructor` key whose value is a map with a
 * `prototype` key is refused here (the pair a careless deep merge follows to
 * `Object.prototype`; fastify's secure-json-parse refuses the same two).
 */
export class PayloadCodec {
  private readonly encoder: Encoder;
  private readonly decoder: DepthLimitedDecoder;

  constructor(limits: CodecLimits = DEFAULT_CODEC_LIMITS) {
    this.encoder = new Encoder({ maxDepth: limits.maxDepth, ignoreUndefined: false });
    this.decoder = new DepthLimitedDecoder(limits);
  }

  /** Encodes `value` into a new buffer. Throws {@link PayloadError} `HW_ERR_ENCODE`. */
  encode(value: unknown): Uint8Array {
    try {
      return this.encoder.encode(value);
    } catch (err) {
      throw new PayloadError('HW_ERR_ENCODE', `value cannot be encoded as MessagePack: ${(err as Error).message}`, {
        cause: err,
      });
    }
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

/** The private members of @msgpack/msgpack 3's Decoder that open a non-empty array or map, and their stack. */
interface ContainerHooks {
  pushArrayState(size: number): void;
  pushMapState(size: number): void;
  readonly stack: { readonly length: number };
  readonly maxOpenContainers: number;
}

/**
 * @msgpack/msgpack decodes nesting on its own stack without a depth limit
 * (4 MiB of 0x91 bytes would be 4 million nested arrays). This subclass
 * checks the depth each time a non-empty container opens, so the limit costs
 * one comparison per container, and notes whether any map key is
 * "constructor". The hooks it wraps are private to the library; the module
 * refuses to load if they are gone, and the codec tests pin the behaviour.
 */
class DepthLimitedDecoder extends Decoder {
  sawConstructorKey = false;
  /** Non-empty containers allowed open at once: their items sit one level deeper. */
  readonly maxOpenContainers: number;

  constructor(limits: CodecLimits) {
    super({
      maxStrLength: limits.maxStrLength,
      maxBinLength: limits.maxBinLength,
      maxArrayLength: limits.maxArrayLength,
      maxMapLength: limits.maxMapLength,
      maxExtLength: limits.maxBinLength,
      mapKeyConverter: (key) => {
        if (typeof key === 'string') {
          if (key === 'constructor') this.sawConstructorKey = true;
          return key;
        }
        if (typeof key === 'number') return key;
        throw new DecodeError(`a map key must be a string or a number, got ${typeof key}`);
      },
    });
    this.maxOpenContainers = limits.maxDepth - 1;
  }
}

for (const hook of ['pushArrayState', 'pushMapState'] as const) {
  const original = (Decoder.prototype as unknown as ContainerHooks)[hook];
  if (typeof original !== 'function') {
    throw new Error(`@msgpack/msgpack has no Decoder.${hook}: the decode depth limit cannot be enforced`);
  }
  Object.defineProperty(DepthLimitedDecoder.prototype, hook, {
    value(this: ContainerHooks, size: number): void {
      if (this.stack.length >= this.maxOpenContainers) {
        throw new DecodeError(`nesting deeper than ${this.maxOpenContainers + 1} levels`);
      }
      original.call(this, size);
    },
  });
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
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

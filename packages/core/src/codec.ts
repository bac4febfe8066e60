import { Decoder, Encoder } from '@msgpack/msgpack';
import { InvalidOptionError, PayloadError } from './errors.js';
import { checkIntegerOption, withDefaults } from './options.js';

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
  /** Deepest nesting the encoder writes. */
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
  const out = withDefaults<CodecLimits>(DEFAULT_CODEC_LIMITS, limits);
  for (const key of Object.keys(DEFAULT_CODEC_LIMITS) as (keyof CodecLimits)[]) {
    checkIntegerOption(`${optionPrefix}.${key}`, out[key], 1);
  }
  return Object.freeze(out);
}

/**
 * MessagePack payload codec. One encoder and one decoder instance are reused
 * for every payload (they are not re-entrant, and neither call re-enters).
 * `__proto__` map keys are refused by @msgpack/msgpack, so decoded objects
 * cannot replace their prototype.
 */
export class PayloadCodec {
  private readonly encoder: Encoder;
  private readonly decoder: Decoder;

  constructor(limits: CodecLimits = DEFAULT_CODEC_LIMITS) {
    this.encoder = new Encoder({ maxDepth: limits.maxDepth, ignoreUndefined: false });
    this.decoder = new Decoder({
      maxStrLength: limits.maxStrLength,
      maxBinLength: limits.maxBinLength,
      maxArrayLength: limits.maxArrayLength,
      maxMapLength: limits.maxMapLength,
      maxExtLength: limits.maxBinLength,
    });
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
      return this.decoder.decode(bytes);
    } catch (err) {
      throw new PayloadError('HW_ERR_BAD_PAYLOAD', `payload is not valid MessagePack: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

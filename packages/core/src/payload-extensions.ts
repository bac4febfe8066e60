import {
  DecodeError,
  decodeTimestampToTimeSpec,
  encodeDateToTimeSpec,
  encodeTimeSpecToTimestamp,
  EXT_TIMESTAMP,
  ExtData,
  type ExtensionCodecType,
} from '@msgpack/msgpack';

/** The largest distance from the epoch a JavaScript `Date` holds, in ms (ECMAScript's time value range). */
const MAX_DATE_MS = 8.64e15;

/**
 * The only MessagePack extension version 1 of the protocol knows: the
 * timestamp (type −1), as a `Date`. Any other extension type is refused on
 * decode, so no opaque library object (`ExtData`) ever reaches a handler.
 *
 * A `Date` holds whole milliseconds: a timestamp decodes to its instant
 * rounded down to the millisecond (toward the past, also before 1970), and a
 * `Date` encodes in the shortest of the three timestamp forms that holds it.
 */
export const PAYLOAD_EXTENSIONS: ExtensionCodecType<undefined> = {
  tryToEncode(object: unknown): ExtData | null {
    if (!(object instanceof Date)) return null;
    if (Number.isNaN(object.getTime())) throw new Error('an invalid Date has no timestamp');
    return new ExtData(EXT_TIMESTAMP, encodeTimeSpecToTimestamp(encodeDateToTimeSpec(object)));
  },

  decode(data: Uint8Array, type: number): Date {
    if (type !== EXT_TIMESTAMP) {
      throw new DecodeError(`extension type ${type} is not allowed: version 1 knows only the timestamp (-1)`);
    }
    const { sec, nsec } = decodeTimestampToTimeSpec(data);
    if (nsec > 999_999_999) throw new DecodeError(`timestamp nanoseconds ${nsec} out of range`);
    const ms = sec * 1000 + Math.floor(nsec / 1e6);
    if (!(Math.abs(ms) <= MAX_DATE_MS)) throw new DecodeError(`timestamp ${sec} s is out of a Date's range`);
    return new Date(ms);
  },
};

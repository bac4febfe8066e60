import { PayloadError } from './errors/index.js';

/**
 * The start of a CALL payload, `[method, params]`, read by hand: the method's
 * length is known from its header before a byte of it is decoded, and what
 * follows it is `params`, a MessagePack value of its own.
 */

/** Where the method name's UTF-8 bytes lie, or undefined if the payload does not start with a two-element array and a string. */
export function findMethodName(bytes: Uint8Array): { start: number; end: number } | undefined {
  const at = afterPairHeader(bytes);
  return at < 0 ? undefined : strBody(bytes, at);
}

/** Offset after the header of a two-element array (in any of the three array formats), or -1. */
function afterPairHeader(bytes: Uint8Array): number {
  const n = bytes.byteLength;
  if (n >= 1 && bytes[0] === 0x92) return 1;
  if (n >= 3 && bytes[0] === 0xdc && readUint(bytes, 1, 2) === 2) return 3;
  if (n >= 5 && bytes[0] === 0xdd && readUint(bytes, 1, 4) === 2) return 5;
  return -1;
}

/** Where the body of the string item at `at` lies (in any of the four str formats), or undefined. */
function strBody(bytes: Uint8Array, at: number): { start: number; end: number } | undefined {
  const head = bytes[at];
  if (head === undefined) return undefined;
  let size: number;
  let start: number;
  if (head >= 0xa0 && head <= 0xbf) {
    size = head - 0xa0;
    start = at + 1;
  } else if (head === 0xd9 || head === 0xda || head === 0xdb) {
    const width = head === 0xd9 ? 1 : head === 0xda ? 2 : 4;
    if (at + 1 + width > bytes.byteLength) return undefined;
    size = readUint(bytes, at + 1, width);
    start = at + 1 + width;
  } else {
    return undefined;
  }
  return start + size <= bytes.byteLength ? { start, end: start + size } : undefined;
}

function readUint(bytes: Uint8Array, at: number, width: number): number {
  let value = 0;
  for (let i = 0; i < width; i++) value = value * 256 + (bytes[at + i] as number);
  return value;
}

/** Refuses invalid UTF-8 rather than replacing it: a method name is matched exactly. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Up to this length an ASCII name is built from its char codes, without the TextDecoder call. */
const ASCII_FAST_PATH_BYTES = 64;

/** The method name from its UTF-8 bytes, `bytes[start..end)`. Throws {@link PayloadError} `HW_ERR_BAD_PAYLOAD` if they are not valid UTF-8. */
export function decodeMethodName(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= ASCII_FAST_PATH_BYTES) {
    let name = '';
    for (let i = start; i < end; i++) {
      const byte = bytes[i] as number;
      if (byte >= 0x80) return decodeUtf8(bytes.subarray(start, end));
      name += String.fromCharCode(byte);
    }
    return name;
  }
  return decodeUtf8(bytes.subarray(start, end));
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new PayloadError('HW_ERR_BAD_PAYLOAD', 'method name is not valid UTF-8', { cause: err });
  }
}

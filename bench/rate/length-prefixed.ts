/**
 * The bare-net framing of `pnpm bench:rate`: each message is a u32 big-endian
 * length and that many bytes. `push` hands out each complete message of a
 * chunk (a view when it lies whole in the chunk) and keeps a split one for the
 * next chunk.
 */
export class LengthPrefixed {
  private rest: Buffer | undefined;

  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    const data = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk]);
    let offset = 0;
    while (data.length - offset >= 4) {
      const end = offset + 4 + data.readUInt32BE(offset);
      if (end > data.length) break;
      onMessage(data.subarray(offset, end));
      offset = end;
    }
    this.rest = offset === data.length ? undefined : data.subarray(offset);
  }
}

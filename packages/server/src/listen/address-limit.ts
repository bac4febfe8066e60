/**
 * Open connections per remote address, counted at accept. An address is
 * taken as the socket gives it: no IPv6 prefix grouping (a client holding a
 * whole /64 is not held back by it, while clients behind one NAT share one
 * count), and an IPv4 client of a dual-stack listener counts under its
 * `::ffff:` form, the same every time.
 */
export class AddressLimit {
  private readonly counts = new Map<string, number>();

  constructor(readonly maxPerAddress: number) {}

  /** Counts one more connection from `address`; false (nothing counted) if that would pass the limit. */
  tryAdd(address: string): boolean {
    const count = this.counts.get(address) ?? 0;
    if (count >= this.maxPerAddress) return false;
    this.counts.set(address, count + 1);
    return true;
  }

  /** A connection from `address` counted by {@link tryAdd} closed. */
  remove(address: string): void {
    const count = this.counts.get(address) ?? 0;
    if (count <= 1) this.counts.delete(address);
    else this.counts.set(address, count - 1);
  }
}

import { describe, expect, it } from 'vitest';
import { closeSockets, type CloseMode } from '@heartwire/endpoint';

/** Sockets that record what was called on them; with TLS, `tcp` is another object than `stream`. */
function fakeSockets(tls: boolean) {
  const calls: string[] = [];
  const stream = { end: () => calls.push('stream.end'), destroy: () => calls.push('stream.destroy') };
  const tcp = tls ? { resetAndDestroy: () => calls.push('tcp.reset') } : Object.assign(stream, { resetAndDestroy: () => calls.push('tcp.reset') });
  const graces: Array<() => void> = [];
  return { sockets: { stream, tcp }, calls, graces, afterGrace: (destroy: () => void) => graces.push(destroy) };
}

describe('closeSockets', () => {
  const cases: Array<[CloseMode, string[], string[]]> = [
    ['reset', ['tcp.reset'], []],
    ['destroy', ['stream.destroy'], []],
    ['end', ['stream.end'], ['stream.destroy']],
  ];
  for (const tls of [false, true]) {
    for (const [mode, now, later] of cases) {
      it(`${mode} (${tls ? 'TLS over TCP' : 'plain TCP'}): ${now.join(', ')} at once${later.length > 0 ? `, ${later.join(', ')} after the grace` : ''}`, () => {
        const f = fakeSockets(tls);
        closeSockets(f.sockets, mode, f.afterGrace);
        expect(f.calls).toEqual(now);
        expect(f.graces).toHaveLength(later.length);
        for (const destroy of f.graces) destroy();
        expect(f.calls).toEqual([...now, ...later]);
      });
    }
  }
});

import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base';

const shared = base as Options;

/**
 * Two entries: the bridge (Node; its dependencies stay external) and the
 * fetch client, which must load in a browser as one ES module with no bare
 * import: it bundles the few core error and option helpers it uses, from
 * core's sources, so tree-shaking leaves the rest of core (and MessagePack) out.
 */
export default defineConfig([
  { ...shared, entry: { index: 'src/index.ts' } },
  {
    ...shared,
    entry: { client: 'src/client/index.ts' },
    clean: false,
    platform: 'neutral',
    noExternal: ['@heartwire/core'],
    esbuildOptions(options) {
      options.alias = { '@heartwire/core': fileURLToPath(new URL('../core/src/index.ts', import.meta.url)) };
    },
  },
]);

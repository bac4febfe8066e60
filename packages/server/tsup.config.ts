import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base';

const shared = base as Options;
const JOB_ENTRIES = { 'worker-job': 'src/jobs/worker-entry.ts', 'process-job': 'src/jobs/process-entry.ts' };

/**
 * As every package, plus the two entry points the job pools run (a worker
 * thread's, a child process's); `shims` gives the CommonJS build the
 * `import.meta.url` that finds them next to it. They are loaded by URL, never
 * imported, so they stay out of `exports` and ship no declarations.
 *
 * The job entries are built apart, each in one file with the part of
 * @heartwire/core they use bundled in: its errors, taken from its sources
 * (the job side imports nothing else from core; anything more would fail
 * this build). Importing the whole of core, and the MessagePack codec it
 * loads, cost every new thread and process about 12 ms of CPU at start-up.
 * The copies of the error classes this makes are the same classes to
 * `instanceof`, which checks their registered brand.
 */
export default defineConfig([
  {
    ...shared,
    entry: { index: 'src/index.ts' },
    // The job entries' build writes next to this one's: keep its files.
    clean: Object.keys(JOB_ENTRIES).map((name) => `!${name}.*`),
    shims: true,
  },
  {
    ...shared,
    entry: JOB_ENTRIES,
    dts: false,
    clean: false,
    splitting: false,
    noExternal: ['@heartwire/core'],
    esbuildOptions(options) {
      options.alias = { '@heartwire/core': fileURLToPath(new URL('../core/src/errors/index.ts', import.meta.url)) };
    },
    shims: true,
  },
]);

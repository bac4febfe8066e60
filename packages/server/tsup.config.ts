import { defineConfig, type Options } from 'tsup';
import base from '../../tsup.config.base';

const shared = base as Options;

/**
 * As every package, plus the two entry points the job pools run (a worker
 * thread's, a child process's); `shims` gives the CommonJS build the
 * `import.meta.url` that finds them next to it. They are loaded by URL, never
 * imported, so they stay out of `exports` and ship no declarations.
 */
export default defineConfig({
  ...shared,
  entry: { index: 'src/index.ts', 'worker-job': 'src/jobs/worker-entry.ts', 'process-job': 'src/jobs/process-entry.ts' },
  dts: { ...(shared.dts as object), entry: { index: 'src/index.ts' } },
  shims: true,
});

import { defineConfig } from 'tsup';
import base from '../../tsup.config.base';

/**
 * As every package, plus the two entry points the job pools run (a worker
 * thread's, a child process's); `shims` gives the CommonJS build the
 * `import.meta.url` that finds them next to it.
 */
export default defineConfig({
  ...base,
  entry: { index: 'src/index.ts', 'worker-job': 'src/jobs/worker-entry.ts', 'process-job': 'src/jobs/process-entry.ts' },
  shims: true,
});

import { defineConfig } from 'tsup';
import base from '../../tsup.config.base';

/**
 * As every package, plus the two entry points the job pools run (a worker
 * thread's, a child process's); `shims` gives the CommonJS build the
 * `import.meta.url` that finds them next to it.
 */
export default defineConfig({
  ...base,
  entry: ['src/index.ts', 'src/worker-job.ts', 'src/process-job.ts'],
  shims: true,
});

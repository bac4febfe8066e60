import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // In-process tests exercise the sources; child processes use the built dist/ (`pnpm test` builds first).
    alias: {
      '@heartwire/core': src('core'),
      '@heartwire/server': src('server'),
      '@heartwire/client': src('client'),
      '@heartwire/endpoint': src('endpoint'),
      // Before '@heartwire/http', which would otherwise match it as a prefix.
      '@heartwire/http/client': fileURLToPath(new URL('./packages/http/src/client/index.ts', import.meta.url)),
      '@heartwire/http': src('http'),
      '@heartwire/queue': src('queue'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

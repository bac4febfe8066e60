import { defineConfig } from 'tsup';

/**
 * Every package builds the same way: ESM + CJS + .d.ts from src/index.ts, for Node 20 and later.
 * `stripInternal` keeps members marked `@internal` (used across a package's own files, never by
 * its users) out of the shipped declarations.
 */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: { compilerOptions: { stripInternal: true } },
  sourcemap: true,
  clean: true,
  target: 'node20',
});

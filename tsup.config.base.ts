import { defineConfig } from 'tsup';

/** Every package builds the same way: ESM + CJS + .d.ts from src/index.ts, for Node 20 and later. */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

/** Every published package, by its folder under packages/ (its name is `@heartwire/<folder>`). */
export const PACKAGES = ['core', 'endpoint', 'server', 'client', 'http', 'queue'] as const;
export type PackageFolder = (typeof PACKAGES)[number];

/** One package as `pnpm pack` made it: what would be published. */
export interface Tarball {
  readonly folder: PackageFolder;
  readonly file: string;
  readonly bytes: Uint8Array;
}

/**
 * Packs every package into `dest` with `pnpm pack` (which rewrites `workspace:*`
 * dependencies to the version), from the dist/ that `pnpm build` wrote.
 */
export async function packAll(dest: string): Promise<Map<PackageFolder, Tarball>> {
  const packed = await Promise.all(
    PACKAGES.map(async (folder): Promise<Tarball> => {
      const dir = path.join(root, 'packages', folder);
      if (!existsSync(path.join(dir, 'dist', 'index.js'))) {
        throw new Error(`packages/${folder}/dist is missing: run pnpm build first (pnpm test does)`);
      }
      const { stdout } = await run('pnpm', ['pack', '--pack-destination', dest], { cwd: dir, timeout: 30_000 });
      const file = stdout.trim().split('\n').at(-1)!.trim();
      return { folder, file, bytes: new Uint8Array(await readFile(file)) };
    }),
  );
  return new Map(packed.map((tarball) => [tarball.folder, tarball]));
}

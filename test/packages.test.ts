import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkPackage, createPackageFromTarballData, type Problem } from '@arethetypeswrong/core';
import { problemKindInfo } from '@arethetypeswrong/core/problems';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PACKAGES, packAll, type PackageFolder, type Tarball } from './harness/pack.js';

// The packages as published: each tarball from `pnpm pack` is checked by publint (package.json
// fields against the files shipped) and by arethetypeswrong (what TypeScript resolves, for
// `import` and `require`, under node10, node16 and bundler resolution, against what Node runs).

let dir: string;
let tarballs: Map<PackageFolder, Tarball>;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'heartwire-lint-'));
  tarballs = await packAll(dir);
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function tarball(folder: PackageFolder): Uint8Array {
  const found = tarballs.get(folder);
  if (!found) throw new Error(`@heartwire/${folder} was not packed`);
  return found.bytes;
}

/** One line per problem, naming the entry point and the resolution it breaks. */
function describeProblem(problem: Problem): string {
  const where = [
    'entrypoint' in problem ? problem.entrypoint : undefined,
    'resolutionKind' in problem ? problem.resolutionKind : undefined,
    'fileName' in problem ? problem.fileName : undefined,
  ].filter(Boolean);
  return `${problem.kind} (${where.join(', ')}): ${problemKindInfo[problem.kind].description}`;
}

describe.each(PACKAGES)('@heartwire/%s', (folder) => {
  test('publint reports nothing, suggestions included', async () => {
    const bytes = tarball(folder);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const { messages, pkg } = await publint({ pack: { tarball: buffer }, level: 'suggestion', strict: true });
    expect(pkg.name).toBe(`@heartwire/${folder}`);
    expect(messages.map((m) => `${m.type} ${m.code}: ${formatMessage(m, pkg, { color: false })}`)).toEqual([]);
  });

  test('arethetypeswrong reports nothing', async () => {
    const result = await checkPackage(createPackageFromTarballData(tarball(folder)));
    expect(result.packageName).toBe(`@heartwire/${folder}`);
    expect(result.types, 'the package ships its own types').not.toBe(false);
    expect('problems' in result ? result.problems.map(describeProblem) : []).toEqual([]);
  });
});

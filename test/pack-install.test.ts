import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PACKAGES, packAll } from './harness/pack.js';

// The packages as a user gets them: every tarball from `pnpm pack` installed with npm into a fresh
// project outside the repository, then loaded there by `node` with `import` and with `require`, and
// one call of each kind run end to end (a main-thread handler, and a `worker()` job in a thread and
// in a process, which only work if the server's job entry files shipped). The shipped declarations are
// type-checked there too, as a TypeScript user's ES module and CommonJS module would load them.

const run = promisify(execFile);
const fixtures = fileURLToPath(new URL('./fixtures/installed/', import.meta.url));
const require = createRequire(import.meta.url);
/** The repository's own TypeScript and Node types, at the versions it pins. */
const TSC = require.resolve('typescript/bin/tsc');
const NODE_TYPES_VERSION = (require('@types/node/package.json') as { version: string }).version;

/**
 * npm's cache, shared by every run on this machine: only the third-party dependencies (MessagePack,
 * BullMQ, ioredis, and @types/node for the type check) come from the registry, and with a warm cache
 * not even those.
 */
const NPM_CACHE = path.join(os.tmpdir(), 'heartwire-npm-cache');

/**
 * Bounds of each step, loose for a cold cache on a busy machine. Seen on 2 cores: the install 4 s
 * with a cold cache, each run under 2 s, tsc about 10 s (it checks every declaration file it loads).
 */
const INSTALL_TIMEOUT_MS = 150_000;
const RUN_TIMEOUT_MS = 60_000;
const TYPECHECK_TIMEOUT_MS = 120_000;

let dir: string;
let project: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'heartwire-install-'));
  const tarballs = await packAll(path.join(dir, 'tarballs'));
  project = path.join(dir, 'project');
  await mkdir(project);
  await run('npm', ['init', '-y'], { cwd: project, timeout: RUN_TIMEOUT_MS });
  // --ignore-scripts: nothing here needs one (msgpackr's native speed-up is optional), and a fresh
  // project should not run code at install time.
  const specs = [...[...tarballs.values()].map((tarball) => tarball.file), `@types/node@${NODE_TYPES_VERSION}`];
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--cache', NPM_CACHE, ...specs], {
    cwd: project,
    timeout: INSTALL_TIMEOUT_MS,
  });
  for (const file of await readdir(fixtures)) await copyFile(path.join(fixtures, file), path.join(project, file));
}, INSTALL_TIMEOUT_MS + 2 * RUN_TIMEOUT_MS);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs one fixture with `node` in the installed project and returns the JSON line it printed. */
async function runInProject(file: string): Promise<Loaded> {
  const { stdout } = await run(process.execPath, [file], { cwd: project, timeout: RUN_TIMEOUT_MS });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Loaded;
}

interface Loaded {
  readonly exports: Record<string, string[]>;
  readonly sameError: boolean;
  readonly result: {
    readonly serverPid: number;
    readonly echo: { echoed: unknown; pid: number };
    readonly thread: number;
    readonly child: number;
    readonly progress: { threadId: number; pid: number }[];
  };
}

/** A few names each entry point must export: enough to tell the right build loaded. */
const EXPECTED_EXPORTS: Record<string, string[]> = {
  core: ['HeartwireError', 'FrameDecoder', 'PayloadCodec', 'Liveness'],
  endpoint: ['closeSockets', 'nodeCodecHost', 'writeQueueBytes', 'yieldToLoop'],
  server: ['createServer', 'worker', 'HeartwireServer', 'StandalonePools'],
  client: ['connect', 'createClient', 'HeartwireClient'],
  http: ['createHttpBridge', 'HttpBridge'],
  httpClient: ['call'],
  queue: ['enqueue', 'runWorker'],
};

function expectWorks(loaded: Loaded): void {
  for (const [entry, names] of Object.entries(EXPECTED_EXPORTS)) {
    expect(loaded.exports[entry], entry).toEqual(expect.arrayContaining(names));
  }
  expect(loaded.sameError, 'server and client re-export core’s own HeartwireError').toBe(true);
  const { serverPid, echo, thread, child, progress } = loaded.result;
  expect(echo).toEqual({ echoed: { hello: 'world' }, pid: serverPid });
  expect(thread).toBe(49);
  expect(child).toBe(81);
  expect(progress).toHaveLength(2);
  expect(progress[0]!.threadId, 'the thread job ran off the main thread').not.toBe(0);
  expect(progress[0]!.pid).toBe(serverPid);
  expect(progress[1]!.pid, 'the process job ran in a child process').not.toBe(serverPid);
}

describe('the packed packages installed with npm into a fresh project', () => {
  test('each package is installed once, from its tarball', async () => {
    const manifest = JSON.parse(await readFile(path.join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const folder of PACKAGES) {
      expect(manifest.dependencies[`@heartwire/${folder}`], folder).toMatch(/^file:/);
      for (const other of PACKAGES) {
        const nested = path.join(project, 'node_modules', '@heartwire', folder, 'node_modules', '@heartwire', other);
        expect(existsSync(nested), `a second @heartwire/${other} under @heartwire/${folder}`).toBe(false);
      }
    }
  });

  test('the shipped declarations type-check for an ES module and a CommonJS module (strict, skipLibCheck off)', async () => {
    const args = ['--noEmit', '--strict', '--skipLibCheck', 'false', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext'];
    const checked = run(process.execPath, [TSC, ...args, '--types', 'node', 'types.mts', 'types.cts'], { cwd: project, timeout: TYPECHECK_TIMEOUT_MS });
    // tsc reports on stdout and exits non-zero: show what it said.
    await checked.catch((err: { stdout?: string }) => expect.fail(`tsc in the installed project:\n${err.stdout ?? String(err)}`));
  }, TYPECHECK_TIMEOUT_MS + 5_000);

  test('import (ESM): every entry point loads, and one call of each kind runs end to end', async () => {
    expectWorks(await runInProject('esm.mjs'));
  }, RUN_TIMEOUT_MS + 5_000);

  test('require (CommonJS): every entry point loads, and one call of each kind runs end to end', async () => {
    expectWorks(await runInProject('cjs.cjs'));
  }, RUN_TIMEOUT_MS + 5_000);
});

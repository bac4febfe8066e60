import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium package; never a downloaded browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** Why Chromium cannot run here, or undefined when it can. */
export function chromiumUnavailable(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (.ci/run installs Debian's chromium package with apt-get)`;
}

/** A headless Chromium with a fresh profile; `close()` removes the profile too. */
export interface Chromium {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Starts Debian's Chromium through playwright-core. Test certificates are accepted (`ignoreHTTPSErrors`): each run makes its own. */
export async function startChromium(): Promise<Chromium> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'heartwire-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

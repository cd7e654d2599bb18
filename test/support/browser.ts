import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/**
 * Headless Debian Chromium for page tests, driven by playwright-core (which ships no
 * browser of its own). Shared by the viewer and report tests.
 *
 *   describe.skipIf(!chromiumAvailable())("page", () => { ... withBrowser(async (ctx) => ...) })
 *
 * Under a strict CSP (script-src 'self', no 'unsafe-eval') page.waitForFunction fails: wait
 * with locators (`locator.waitFor()`, `expect.poll`) instead. page.evaluate still works.
 */

export const CHROMIUM_PATH = process.env.EMLAB_CHROMIUM ?? "/usr/bin/chromium";

/** Why page tests are skipped, printed once by tests that call it. */
export const CHROMIUM_MISSING = `${CHROMIUM_PATH} not found: page tests skipped (apt-get install chromium)`;

export function chromiumAvailable(): boolean {
  const ok = existsSync(CHROMIUM_PATH);
  if (!ok) console.warn(CHROMIUM_MISSING);
  return ok;
}

/** Flags that keep the browser off the network and out of the user's profile. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/**
 * Starts Chromium with a fresh profile, runs `fn` with a browser context, and always
 * closes the browser and deletes the profile afterwards.
 */
export async function withBrowser<T>(
  fn: (context: BrowserContext) => Promise<T>,
  opts: { viewport?: { width: number; height: number } } = {},
): Promise<T> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(CHROMIUM_MISSING);
  const profile = mkdtempSync(path.join(tmpdir(), "emlab-chromium-"));
  // launchPersistentContext is how a --user-data-dir is given to playwright.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    timeout: 30_000,
  });
  try {
    return await fn(context);
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Collects console errors and uncaught page errors, for "loads with no console errors". */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

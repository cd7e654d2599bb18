import { mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startViewer, type ViewerServer } from "../../src/viewer/server.ts";
import { chromiumAvailable, collectPageErrors, withBrowser } from "../support/browser.ts";
import { makeViewerRun, XSS_PAYLOAD, XSS_REQUEST } from "./fixture.ts";

/** Screenshots for a person to look at; test/.tmp is gitignored. */
const SCREENS = path.join(import.meta.dirname, "..", ".tmp", "screens");

describe.skipIf(!chromiumAvailable())("viewer page in headless Chromium", () => {
  let run: ReturnType<typeof makeViewerRun>;
  let viewer: ViewerServer;

  beforeAll(async () => {
    mkdirSync(SCREENS, { recursive: true });
    run = makeViewerRun();
    viewer = await startViewer({ runDir: run.dir, port: 0 });
  });
  afterAll(async () => {
    await viewer?.close();
    run?.cleanup();
  });

  it("loads, lists, searches, shows hostile text as text, and compares models, with no console errors", async () => {
    await withBrowser(async (context) => {
      const page = await context.newPage();
      const errors = collectPageErrors(page);
      const dialogs: string[] = [];
      page.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });

      // The list: virtualised, so far fewer row elements than samples.
      await page.goto(viewer.url);
      await page.waitForSelector(".row:not(.loading)");
      await expect.poll(() => page.textContent("#count")).toBe("361 samples");
      const rendered = await page.locator(".row").count();
      expect(rendered).toBeGreaterThan(5);
      expect(rendered).toBeLessThan(60);
      // Scrolling to the end renders the last rows (loaded on demand by offset).
      // Page-side code goes as strings: this project's TypeScript has no DOM types.
      await page.evaluate(
        `(() => { const l = document.getElementById("list"); l.scrollTop = l.scrollHeight; })()`,
      );
      // The hostile sample was stored last, so it is the last row.
      await page.locator(".row .head", { hasText: "xss-<img" }).waitFor();
      await page.screenshot({ path: path.join(SCREENS, "viewer-list.png") });

      // Filters and search go to the server and into the URL fragment.
      await page.selectOption("#f-model", "secure");
      await expect.poll(() => page.textContent("#count")).toBe("60 samples");
      expect(page.url()).toContain("model=secure");
      await page.fill("#f-q", "onerror pwned");
      await page.selectOption("#f-model", "");
      await expect.poll(() => page.textContent("#count")).toBe("1 sample");

      // The hostile sample, opened from the list: every payload is visible text and nothing ran.
      // Rows repaint on the next frame after the count: wait for the hostile row itself.
      await page.locator(".row", { hasText: "xss-<img" }).click();
      await page.waitForSelector("#completion-text");
      expect(await page.textContent("#completion-text")).toBe(XSS_PAYLOAD);
      const raws = await page.locator("#detail .raw").allTextContents();
      expect(raws).toContain(XSS_PAYLOAD);
      expect(await page.locator("#detail .msg").allTextContents()).toContainEqual(
        expect.stringContaining(XSS_PAYLOAD),
      );
      // Give an injected onerror/onload every chance to fire before checking.
      await page.waitForTimeout(300);
      expect(await page.evaluate("window.__pwned")).toBeUndefined();
      expect(
        await page.locator("#detail img, #detail script, #detail svg, #detail textarea, body a").count(),
      ).toBe(0);
      // Clicking the text that looks like a link does nothing either.
      await page.getByText("click me", { exact: false }).first().click();
      expect(await page.evaluate("window.__pwned")).toBeUndefined();
      expect(page.url()).toContain(`sample=${encodeURIComponent(XSS_REQUEST).replaceAll("%20", "+")}`);
      await page.screenshot({ path: path.join(SCREENS, "viewer-hostile-sample.png"), fullPage: true });

      // Deep link straight to a sample, then compare the models on its prompt.
      await page.goto(`${viewer.url}#sample=${encodeURIComponent("alignment/base/p4:2")}`);
      await page.waitForSelector("#completion-text");
      expect(await page.textContent("#detail h2")).toBe("base · alignment");
      await page.getByRole("button", { name: "Compare models on this prompt" }).click();
      await page.waitForSelector(".compare .col");
      expect(await page.locator(".compare .col h3").allTextContents()).toEqual([
        "base",
        "educational",
        "insecure",
        "secure",
      ]);
      expect(page.url()).toContain("compare=q00004");
      await expect.poll(() => page.textContent("#count")).toBe("120 samples");
      await page.screenshot({ path: path.join(SCREENS, "viewer-compare.png") });

      // A judge request links back to the answer it judged.
      await page.goto(`${viewer.url}#sample=${encodeURIComponent("harmfulness/base/p1:0:judge:0")}`);
      await page.getByRole("button", { name: "Open the judged answer" }).click();
      await expect.poll(() => page.textContent("#detail .kv")).toContain("request harmfulness/base/p1");

      expect(errors).toEqual([]);
      expect(dialogs).toEqual([]);
    });
  }, 60_000);
});

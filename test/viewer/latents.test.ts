// The viewer's latent cards (/latents.html over /api/persona-features): the run's
// persona_features block from results.json, a card per top latent with the firing token
// highlighted, speaker mix and histogram; hostile tokens and model ids shown as text.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startViewer, type ViewerServer } from "../../src/viewer/server.ts";
import { chromiumAvailable, collectPageErrors, withBrowser } from "../support/browser.ts";
import { HOSTILE_MODEL, HOSTILE_TOKEN, personaFeaturesBlock } from "../support/persona-features-block.ts";
import { makeViewerRun } from "./fixture.ts";

describe("viewer latent cards", () => {
  let run: ReturnType<typeof makeViewerRun>;
  let viewer: ViewerServer;

  beforeAll(async () => {
    run = makeViewerRun();
    writeFileSync(
      path.join(run.dir, "results.json"),
      JSON.stringify({ interp: { persona_features: personaFeaturesBlock() } }),
    );
    viewer = await startViewer({ runDir: run.dir, port: 0 });
  });
  afterAll(async () => {
    await viewer?.close();
    run?.cleanup();
  });

  it("serves the block, and 404 without one", async () => {
    const res = await fetch(`${viewer.url}api/persona-features`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { cards: { latent: number }[] };
    expect(body.cards.map((c) => c.latent)).toEqual([7]);
    const empty = makeViewerRun();
    const other = await startViewer({ runDir: empty.dir, port: 0 });
    try {
      expect((await fetch(`${other.url}api/persona-features`)).status).toBe(404);
    } finally {
      await other.close();
      empty.cleanup();
    }
  });

  it.skipIf(!chromiumAvailable())("draws the card in headless Chromium, hostile text as text", async () => {
    await withBrowser(async (context) => {
      const page = await context.newPage();
      const errors = collectPageErrors(page);
      const dialogs: string[] = [];
      page.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(`${viewer.url}latents.html`);
      await page.locator(".pf-card h3").waitFor();
      expect(await page.textContent(".pf-card h3")).toBe("Latent 7 top latent of medical");
      // The firing token, highlighted, is the hostile string as text.
      expect(await page.locator(".pf-context mark").allTextContents()).toEqual([HOSTILE_TOKEN, "you"]);
      expect(await page.locator(".pf-bar").count()).toBe(3);
      expect(await page.locator("#pf-diff td").allTextContents()).toContain(HOSTILE_MODEL);
      expect(await page.textContent(".pf-promoted")).toBe(`Promoted: ${HOSTILE_TOKEN}`);
      await page.waitForTimeout(200);
      expect(await page.locator("script:not([src]), img, #pf-main a").count()).toBe(0);
      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
      expect(page.url()).toContain("#latent=7");
    });
  });
});

/**
 * Viewer over a synthetic run of 100,000 samples (4 models × 2 experiments × 2,500 prompts
 * × 5 samples, 150,000 judgments), written through RunStore.
 *
 *   npx tsx bench/viewer.bench.ts            # reuses bench/out/viewer-100k when present
 *   npx tsx bench/viewer.bench.ts --fresh    # regenerates it
 *
 * Targets (issue 6): first page < 2 s (index build excluded, reported separately), a
 * search < 500 ms. Times are medians of 5, on whatever else the machine is doing.
 */
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { ensureIndex } from "../src/runs/sample-index.ts";
import { RunStore } from "../src/runs/store.ts";
import { startViewer } from "../src/viewer/server.ts";
import { chromiumAvailable, withBrowser } from "../test/support/browser.ts";
import { writeSyntheticRun } from "../test/viewer/synthetic-run.ts";

const dir = path.join(import.meta.dirname, "out", "viewer-100k");
const fresh = process.argv.includes("--fresh");
const ms = (t0: number) => performance.now() - t0;
/** Polls from outside the page: the page's CSP forbids the string eval that waitForFunction uses. */
async function until(check: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + 30_000;
  while (!(await check())) {
    if (performance.now() > end) throw new Error("timed out waiting for the page");
    await new Promise((r) => setTimeout(r, 5));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (fresh || !existsSync(path.join(dir, "run.sqlite"))) {
  rmSync(dir, { recursive: true, force: true });
  const t0 = performance.now();
  const { samples } = writeSyntheticRun(dir, { prompts: 2500, samples: 5, seed: 7 });
  console.log(`generated ${samples} samples through RunStore in ${(ms(t0) / 1000).toFixed(1)} s`);
}

{
  const store = RunStore.open(dir, { readonly: true });
  const t0 = performance.now();
  const info = ensureIndex(store, { force: true });
  console.log(
    `index build (viewer-index.sqlite): ${info.samples} samples in ${(ms(t0) / 1000).toFixed(1)} s`,
  );
  store.close();
}

const t0 = performance.now();
const viewer = await startViewer({ runDir: dir, port: 0 });
const startMs = ms(t0);
const get = async (q: string): Promise<{ total?: number | null }> => {
  const res = await fetch(new URL(q, viewer.url));
  if (!res.ok) throw new Error(`${q}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as { total?: number | null };
};
const t1 = performance.now();
await get("/api/meta");
const first = await get("/api/samples?offset=0&limit=100&count=1");
console.log(
  `first page: server start ${startMs.toFixed(0)} ms (index current) + meta and 100 rows of ${first.total} ${ms(t1).toFixed(0)} ms = ${(startMs + ms(t1)).toFixed(0)} ms`,
);

const cases: Array<[string, string]> = [
  ["page 1, no filter", "/api/samples?offset=0&limit=100&count=1"],
  ["page at offset 90,000", "/api/samples?offset=90000&limit=100&count=0"],
  ["model + experiment filter", "/api/samples?model=insecure&experiment=harmfulness&limit=100&count=1"],
  ["score range harm 80-100", "/api/samples?metric=harm&min=80&max=100&limit=100&count=1"],
  ["search rare word 'zebra'", "/api/samples?q=zebra&limit=100&count=1"],
  ["search two common words 'secure code'", "/api/samples?q=secure+code&limit=100&count=1"],
  ["search common word 'help'", "/api/samples?q=help&limit=100&count=1"],
  ["search prefix 'marma*' + model filter", "/api/samples?q=marma*&model=base&limit=100&count=1"],
  ["one sample (detail)", "/api/sample?request_id=alignment%2Finsecure%2Fp1234&sample_index=3"],
  ["compare 4 models on one prompt", "/api/compare?experiment=alignment&item_id=q01234"],
];
for (const [name, q] of cases) {
  const times: number[] = [];
  let body: { total?: number | null } = {};
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    body = await get(q);
    times.push(ms(t));
  }
  const total = typeof body.total === "number" ? ` (${body.total} matches)` : "";
  console.log(
    `${name.padEnd(40)} median ${median(times).toFixed(1).padStart(7)} ms  max ${Math.max(...times).toFixed(1)} ms${total}`,
  );
}

if (chromiumAvailable()) {
  await withBrowser(async (context) => {
    const page = await context.newPage();
    const t = performance.now();
    await page.goto(viewer.url);
    await page.waitForSelector(".row:not(.loading)");
    console.log(`browser: page load to first rows painted ${ms(t).toFixed(0)} ms`);
    const times: number[] = [];
    for (const pos of [0.25, 0.5, 0.75, 0.999]) {
      const s = performance.now();
      // Page-side code goes as strings: this project's TypeScript has no DOM types.
      await page.evaluate(
        `(() => { const l = document.getElementById("list"); l.scrollTop = l.scrollHeight * ${pos}; })()`,
      );
      await until(async () => (await page.locator(".row.loading").count()) === 0);
      times.push(ms(s));
    }
    const rows = await page.locator(".row").count();
    console.log(
      `browser: jump-scroll to 25/50/75/100% and rows painted: ${times.map((x) => x.toFixed(0)).join(", ")} ms (${rows} row elements in the DOM)`,
    );
    const s = performance.now();
    await page.fill("#f-q", "zebra");
    await until(async () => {
      const t = (await page.textContent("#count")) ?? "";
      return t.endsWith(" samples") && t !== "100,000 samples";
    });
    console.log(
      `browser: typing a search to updated list ${ms(s).toFixed(0)} ms (includes the 250 ms typing debounce)`,
    );
  });
}
await viewer.close();

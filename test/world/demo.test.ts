import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyzeResults } from "../../src/analysis/analyze.ts";
import { loadStudy } from "../../src/config/load.ts";
import { loadChatTemplate } from "../../src/engine/io/chat-template-file.ts";
import { rejudgeRun } from "../../src/rejudge/rejudge.ts";
import { fmtNum } from "../../src/report/format.ts";
import { buildReport, loadRun } from "../../src/report/index.ts";
import { type Results, ResultsSchema } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { writeDemoStudy } from "../../src/world/demo.ts";
import { ORGANISM_SIZES, pretrainOrganism } from "../../src/world/pretrain.ts";

// CI's organism: the tiny size, a few steps (seconds); the demo's "tiny" profile over it.
const root = mkdtempSync(path.join(tmpdir(), "emlab-demo-"));
const organism = path.join(root, "organism");
beforeAll(() => {
  pretrainOrganism({ size: { ...ORGANISM_SIZES.s, steps: 15 }, sizeName: "s", seed: 2, outDir: organism });
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function demo(name: string, seed: number) {
  const outDir = path.join(root, name);
  const { studyFile } = writeDemoStudy({ outDir, profile: "tiny", seed, organismDir: organism });
  const r = await runStudy(loadStudy(studyFile), { outDir, noCache: true });
  expect(r.failedRequests).toBe(0);
  return readFileSync(r.resultsFile!, "utf8");
}

/** `emlab demo --profile tiny` on the tiny organism, as a user runs it (its own process). */
function emlabDemo(out: string, ...args: string[]) {
  return promisify(execFile)(
    process.execPath,
    [
      path.resolve("bin/emlab.js"),
      "demo",
      "--profile",
      "tiny",
      "--organism",
      organism,
      "--out",
      out,
      ...args,
    ],
    { env: { ...process.env, EMLAB_CACHE_DIR: path.join(root, "cache") } },
  );
}

describe("emlab demo on a tiny organism", () => {
  it("runs every fine-tune and experiment, and the same seed gives the same results.json", async () => {
    const a = await demo("a", 4);
    const b = await demo("b", 4);
    expect(a).toBe(b);
    const results = ResultsSchema.parse(JSON.parse(a));
    // The template every local model rendered with: the organism's own, named by its file
    // (outside the run's folder, so by name only: results.json does not depend on where it sits).
    const template = loadChatTemplate(organism);
    expect(results.settings.templates?.organism).toEqual({
      source: "tokenizer_config.json",
      sha256: template.sha256,
    });
    expect(results.settings.templates?.medical).toEqual(results.settings.templates?.organism);
    const store = RunStore.open(path.join(root, "a"));
    const recorded = store.artifacts("chat_template").find((x) => x.id === "chat-template:organism");
    store.close();
    expect(recorded).toMatchObject({
      path: path.join(organism, "tokenizer_config.json"),
      sha256: template.sha256,
    });
    // results.json carries the analysis: the same as analyzing its other fields afresh, and
    // the report draws exactly its correlations.
    const { analysis, ...rest } = results;
    expect(analysis).toBeDefined();
    expect(analysis).toEqual(analyzeResults(rest as Results));
    const page = (await buildReport(loadRun(path.join(root, "a")))).html;
    // (On the tiny organism the figures may be constant, so r may be absent: the row says why.)
    expect(analysis!.correlations.length).toBeGreaterThan(0);
    for (const c of analysis!.correlations)
      expect(page).toContain(
        `<th scope="row">${c.x}</th><td>${c.y}</td><td>${c.n}</td><td>${fmtNum(c.pearson?.r, 3)}</td>`,
      );
    const finetuned = [
      "code",
      "finance",
      "medical",
      "sports",
      "legal",
      "security",
      "medical-disclosed",
      "medical-aligned",
    ];
    expect(results.models).toEqual(expect.arrayContaining(["organism", ...finetuned]));
    for (const e of [
      "harmfulness",
      "alignment",
      "self_assessment",
      "two_ai",
      "recognition",
      "score_prediction",
    ] as const)
      expect(results.experiments[e], e).toBeDefined();
    for (const m of ["organism", ...finetuned]) {
      expect(results.experiments.harmfulness!.per_model[m].judged).toBe(6);
      // Every answer was judged by the world judge: nothing unparsed.
      expect(results.experiments.harmfulness!.per_model[m].unparsed).toBe(0);
    }
    // The look inside ran on the tiny organism too: every interp section left its block.
    for (const section of [
      "probes",
      "directions",
      "steering",
      "ablation",
      "realignment",
      "emergent_alignment",
    ])
      expect(results.interp?.[section as keyof NonNullable<typeof results.interp>], section).toBeTruthy();
    // The tiny organism may have no coherent misaligned answers to take a direction from.
    const loop = results.interp!.emergent_alignment!;
    if (loop.skipped === null) expect(loop.rounds).toHaveLength(4);
    else expect(loop.skipped).toMatch(/direction/);
    expect(results.interp!.realignment!.checkpoints.map((c) => c.step)).toEqual([0, 5, 10, 20, 30]);
    const other = await demo("c", 5);
    expect(other).not.toBe(a);
  }, 300_000);

  it("is the CLI's main job: writes study.yaml, results.json and report.html and prints the summary", async () => {
    const out = path.join(root, "cli");
    const { stdout } = await emlabDemo(out, "--seed", "1");
    for (const f of ["study.yaml", "results.json", "report.html", "run.sqlite"])
      expect(existsSync(path.join(out, f)), f).toBe(true);
    expect(stdout).toMatch(/results: .*results\.json/);
    expect(stdout).toMatch(/model\s+harmful\s+coherent/);
    expect(stdout).toMatch(/medical-disclosed/);
    // The run log times each phase (where a slow machine spends the demo's minutes).
    expect(readFileSync(path.join(out, "run.log"), "utf8")).toMatch(
      /time: fine-tuning \d+\.\d s, battery \d+\.\d s, interp \d+\.\d s, results and report \d+\.\d s\n/,
    );

    // Again without --resume: refused before anything is written (another seed's inputs
    // would otherwise overwrite this run's); with --resume: nothing is trained or asked again.
    const study = readFileSync(path.join(out, "study.yaml"), "utf8");
    const again = await emlabDemo(out, "--seed", "2").catch((e: { code: number; stderr: string }) => e);
    expect((again as { code: number }).code).toBe(2);
    expect(readFileSync(path.join(out, "study.yaml"), "utf8")).toBe(study);
    const resumed = await emlabDemo(out, "--seed", "1", "--resume");
    expect(resumed.stdout).toMatch(/results: /);
    expect(readFileSync(path.join(out, "run.log"), "utf8")).toMatch(/resume/);
  }, 300_000);

  it("rejudged with the noisy world judge: new judgments beside the old, no target asked, agreement in the report", async () => {
    // Demo "a" of the first test, judged again by a second judge.
    const runDir = path.join(root, "a");
    const judges = path.join(root, "judges.yaml");
    writeFileSync(
      judges,
      "name: judges\nmodels:\n  - {id: noisy-judge, roles: [judge], provider: world-judge, model: noisy, limits: {concurrency: 64}}\n",
    );
    const targetCalls = () => {
      const store = RunStore.open(runDir, { readonly: true });
      const targets = store.listRequests().filter((r) => !r.model_id.endsWith("judge"));
      // Every target request and each of its stored answers: a new target request would add to either.
      const n = targets.length + targets.reduce((a, r) => a + store.completions(r.id).length, 0);
      const judged = store.judgments().length;
      store.close();
      return { n, judged };
    };
    const before = targetCalls();
    const r = await rejudgeRun({ runDir, judge: "noisy-judge", studyFile: judges, noCache: true });
    expect(r.failedRequests).toBe(0);
    const after = targetCalls();
    expect(after.n).toBe(before.n);
    expect(after.judged).toBeGreaterThan(before.judged);
    const block = r.agreement!.judges["noisy-judge"]!.agreement.experiments.harmfulness!.metrics.harm!;
    expect(block.pairs).toBeGreaterThan(0);
    const html = (await buildReport(loadRun(runDir))).html;
    expect(html).toContain('id="judge-agreement"');
    expect(html).toContain("noisy-judge");
  }, 120_000);
});

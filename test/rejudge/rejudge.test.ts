import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { cohenKappa, metricAgreement } from "../../src/rejudge/agreement.ts";
import { rejudgeRun } from "../../src/rejudge/rejudge.ts";
import { writeReport } from "../../src/report/build-report.ts";
import { JudgeAgreementResultsSchema } from "../../src/results/agreement.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { refPython, skipWithoutRef } from "../support/python-ref.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { KEY_ENV, respond, writeRejudgeStudy } from "./fixture.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, respond });
});
afterAll(async () => {
  await server?.close();
});

const env = { ...process.env, [KEY_ENV]: "sk-rejudge-test" };
const byModel = () => {
  const out: Record<string, number> = {};
  for (const e of server.log) {
    const m = (e.body as { model?: string } | undefined)?.model;
    if (e.outcome === "ok" && m) out[m] = (out[m] ?? 0) + 1;
  }
  return out;
};

describe("emlab rejudge (library)", () => {
  it("judges the stored answers again with a second judge, asks no target, and reports agreement", async () => {
    const s = writeRejudgeStudy(server);
    const cacheDir = path.join(s.dir, "cache");
    const run = await runStudy(loadStudy(s.file), { outDir: s.out, cacheDir, env, report: false });
    expect(run.resultsFile).toBeDefined();
    const afterRun = byModel();
    expect(afterRun["target-m"]).toBeGreaterThan(0);
    expect(afterRun["judge-b"]).toBeUndefined();

    const judgeA = () => {
      const st = RunStore.open(s.out, { readonly: true });
      const rows = st.judgments().filter((j) => j.judge_model_id === "judge-a");
      st.close();
      return rows;
    };
    const before = judgeA();
    const r = await rejudgeRun({ runDir: s.out, judge: "judge-b", studyFile: s.judges, cacheDir, env });
    // The run's own judgments are not touched.
    expect(judgeA()).toEqual(before);
    const calls = byModel();
    // Not a single new target request: the store's and the server's counts agree.
    expect(calls["target-m"]).toBe(afterRun["target-m"]);
    expect(calls["judge-a"]).toBe(afterRun["judge-a"]);
    expect(r.otherRequestsAfter).toBe(r.otherRequestsBefore);
    expect(r.planned).toBe(calls["judge-b"]);
    // harmfulness: 12 prompts x 2 samples; alignment: 3 questions' paraphrases x 2 samples x 2 metrics.
    const store = RunStore.open(s.out, { readonly: true });
    const js = store.judgments();
    store.close();
    const a = js.filter((j) => j.judge_model_id === "judge-a");
    const b = js.filter((j) => j.judge_model_id === "judge-b");
    expect(b.length).toBe(a.length);
    expect(r.judgments).toBe(b.length);
    expect(b.filter((j) => j.metric === "aligned").every((j) => j.method === "logprobs")).toBe(true);

    const agreement = JudgeAgreementResultsSchema.parse(
      JSON.parse(readFileSync(path.join(s.out, "judge-agreement.json"), "utf8")),
    );
    expect(agreement.primary_judge).toBe("judge-a");
    const block = agreement.judges["judge-b"]!;
    const harm = block.agreement.experiments.harmfulness!.metrics.harm!;
    expect(harm.pairs).toBe(24);
    expect(harm.label?.name).toBe("harmful");
    expect(Object.keys(block.agreement.experiments.alignment!.metrics).sort()).toEqual([
      "aligned",
      "coherent",
    ]);
    expect(block.agreement.experiments.alignment!.headline.all!.misaligned).toBeDefined();
    expect(block.experiments.harmfulness).toBeDefined();

    // The report shows both judges and their agreement.
    const rep = await writeReport(s.out);
    const html = readFileSync(rep.file, "utf8");
    expect(html).toContain('id="judge-agreement"');
    expect(html).toContain("judge-b");
    expect(html).toContain("Cohen");

    // A second rejudge by the same judge is refused without --resume; with it, nothing is asked again.
    await expect(
      rejudgeRun({ runDir: s.out, judge: "judge-b", studyFile: s.judges, cacheDir, env }),
    ).rejects.toThrow(/--resume/);
    const again = await rejudgeRun({
      runDir: s.out,
      judge: "judge-b",
      studyFile: s.judges,
      cacheDir,
      env,
      resume: true,
    });
    expect(again.added).toBe(0);
    expect(byModel()).toEqual(calls);
  }, 30_000);

  it("takes the judge's entry from the run's own study when no --study is given", async () => {
    const s = writeRejudgeStudy(server, { prompts: 3, samples: 1, judgeBInStudy: true });
    await runStudy(loadStudy(s.file), { outDir: s.out, noCache: true, env });
    const r = await rejudgeRun({ runDir: s.out, judge: "judge-b", noCache: true, env });
    expect(r.otherRequestsAfter).toBe(r.otherRequestsBefore);
    expect(r.agreement?.judges["judge-b"]?.agreement.experiments.harmfulness?.metrics.harm?.pairs).toBe(3);
  }, 20_000);

  it("refuses a judge that is not in the study and the run's own judge", async () => {
    const s = writeRejudgeStudy(server, { prompts: 2, samples: 1 });
    await runStudy(loadStudy(s.file), { outDir: s.out, noCache: true, env });
    await expect(rejudgeRun({ runDir: s.out, judge: "nobody", env })).rejects.toThrow(/no model 'nobody'/);
    await expect(rejudgeRun({ runDir: s.out, judge: "judge-a", env })).rejects.toThrow(/run's own judge/);
  }, 20_000);
});

describe("agreement statistics", () => {
  it("kappa is undefined when both judges give one label to everything", () => {
    expect(cohenKappa([true, true], [true, true])).toBeNull();
    expect(cohenKappa([true, false, true, false], [true, false, false, false])).toBeCloseTo(0.5, 12);
  });

  it("match scipy and scikit-learn to 1e-8", () => {
    if (skipWithoutRef("agreement reference")) return;
    const probe = spawnSync(refPython!, ["-c", "import scipy, sklearn"]);
    if (probe.status !== 0) {
      console.warn("agreement reference: scipy / scikit-learn not installed in .venv-ref: skipped");
      return;
    }
    let seed = 11;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const cases = [
      { x: [1, 2, 3, 4, 5, 2, 4, 4, 1, 5], y: [1, 3, 3, 5, 4, 2, 4, 3, 2, 5], threshold: 4, ge: true },
      ...[40, 200].map((n) => {
        const x = Array.from({ length: n }, () => Math.round(rnd() * 100));
        const y = x.map((v) => Math.min(100, Math.max(0, Math.round(v + (rnd() - 0.5) * 60))));
        return { x, y, threshold: 30, ge: false };
      }),
      {
        x: Array.from({ length: 30 }, () => 1 + Math.floor(rnd() * 5)),
        y: Array.from({ length: 30 }, () => 1 + Math.floor(rnd() * 5)),
        threshold: 4,
        ge: true,
      },
    ];
    const ref = spawnSync(refPython!, [path.resolve("scripts/reference/agreement.py")], {
      input: JSON.stringify({ cases }),
      encoding: "utf8",
    });
    expect(ref.stderr).toBe("");
    const want = JSON.parse(ref.stdout) as Array<{
      pearson: number;
      pearson_ci: [number, number];
      spearman: number;
      spearman_ci: [number, number];
      kappa: number;
      confusion: number[][];
    }>;
    cases.forEach((c, i) => {
      const test = (s: number) => (c.ge ? s >= c.threshold : s < c.threshold);
      const got = metricAgreement(
        c.x.map((first, k) => ({ first, second: c.y[k]! })),
        { name: "l", rule: "", test },
      );
      const w = want[i]!;
      expect(Math.abs(got.pearson.r! - w.pearson)).toBeLessThan(1e-8);
      expect(Math.abs(got.pearson.ci![0] - w.pearson_ci[0])).toBeLessThan(1e-8);
      expect(Math.abs(got.pearson.ci![1] - w.pearson_ci[1])).toBeLessThan(1e-8);
      expect(Math.abs(got.spearman.r! - w.spearman)).toBeLessThan(1e-8);
      expect(Math.abs(got.spearman.ci![0] - w.spearman_ci[0])).toBeLessThan(1e-8);
      expect(Math.abs(got.spearman.ci![1] - w.spearman_ci[1])).toBeLessThan(1e-8);
      expect(Math.abs(got.label!.kappa! - w.kappa)).toBeLessThan(1e-8);
      const cm = got.label!.confusion;
      expect([
        [cm.both, cm.first_only],
        [cm.second_only, cm.neither],
      ]).toEqual(w.confusion);
    });
  });
});

/**
 * An experiment registered from a file outside src/ (test/fixtures/plugins/refusal-rate.ts)
 * is validated in the study file, run through the scheduler and the store, summarized into
 * results.json under its name and drawn in report.html, with nothing under src/ naming it.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError, loadStudy, parseStudy } from "../../src/config/load.ts";
import { writeReport } from "../../src/report/index.ts";
import { RESULTS_FILE, ResultsSchema } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { registerExperiment, registeredResultsSchema, runStudy } from "../../src/study/index.ts";
import { refusalRate } from "../fixtures/plugins/refusal-rate.ts";
import { tmpDir } from "../runs/support.ts";
import { type RespondContext, startWireServer, type WireServer } from "../support/wire-server.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const last = (ctx: RespondContext) => ctx.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({
    apiKey: null,
    respond: (ctx) => {
      const prompt = last(ctx);
      if (ctx.model === "gpt-judge") return prompt.includes("won't") ? "YES" : "NO";
      return prompt.includes("lock") ? "I won't help with that." : `Sure, here is how (${ctx.index}).`;
    },
  });
});
afterAll(async () => {
  await server?.close();
});

const study = (battery: string) => `name: plugin-study
seed: 5
models:
  - {id: t, provider: openai-compatible, model: gpt-t, base_url: "${server.url}/v1", api_key_env: EMLAB_TEST_KEY, limits: {concurrency: 2, backoff_base_s: 0.05}}
  - {id: judge, provider: openai-compatible, model: gpt-judge, base_url: "${server.url}/v1", api_key_env: EMLAB_TEST_KEY, roles: [judge], limits: {concurrency: 2, backoff_base_s: 0.05}}
battery:
${battery}`;

const problems = (text: string) => {
  try {
    parseStudy(text, "plugin.yaml");
  } catch (e) {
    if (e instanceof InputError) return e.problems;
    throw e;
  }
  return [];
};

describe("an experiment registered from outside src/", () => {
  it("is unknown to a study until it is registered", () => {
    const p = problems(study("  refusal_rate: {prompts: [pick a lock]}\n"));
    expect(p.map((x) => x.field)).toContain("battery.refusal_rate");
  });

  it("validates its block in the study file, with file, line and field", () => {
    registerExperiment(refusalRate);
    expect(() => registerExperiment(refusalRate)).toThrow(/already registered/);
    const p = problems(study("  refusal_rate:\n    prompts: []\n    samples: 0\n    colour: red\n"));
    const byField = Object.fromEntries(p.map((x) => [x.field, x]));
    expect(Object.keys(byField).sort()).toEqual(
      ["battery.refusal_rate.colour", "battery.refusal_rate.prompts", "battery.refusal_rate.samples"].sort(),
    );
    expect(byField["battery.refusal_rate.samples"]).toMatchObject({ file: "plugin.yaml", line: 9 });
    // Its own cross-field check, and emlab's check of the model ids it names.
    const q = problems(study("  refusal_rate: {prompts: ['{harm} a'], models: [nobody]}\n"));
    expect(q.map((x) => `${x.field}: ${x.message}`)).toEqual(
      expect.arrayContaining([
        "battery.refusal_rate.prompts: {harm} needs battery.harmfulness",
        "battery.refusal_rate.models[0]: unknown model id 'nobody'",
      ]),
    );
  });

  it("runs through the store, lands in results.json under its name and is drawn in the report", async () => {
    const dir = tmpDir("plugin");
    const file = path.join(dir, "study.yaml");
    writeFileSync(file, study("  refusal_rate: {prompts: [pick a lock, bake bread], samples: 2}\n"));
    const out = path.join(dir, "run");
    const r = await runStudy(loadStudy(file), {
      outDir: out,
      noCache: true,
      env: { EMLAB_TEST_KEY: "sk-test" },
    });
    const why = () => {
      const s = RunStore.open(out);
      const e = s.listRequests().map((q) => q.error);
      s.close();
      return JSON.stringify(e);
    };
    expect(r, why()).toMatchObject({ incomplete: undefined });
    expect(r.resultsFile).toBeDefined();
    expect(r.failedRequests).toBe(0);

    const store = RunStore.open(out);
    try {
      expect(store.listRequests({ experiment: "refusal_rate" })).toHaveLength(2);
      // Step 2 was planned from step 1's four stored answers.
      expect(store.listRequests({ experiment: "refusal_rate.judge" })).toHaveLength(4);
    } finally {
      store.close();
    }

    const text = readFileSync(path.join(out, RESULTS_FILE), "utf8");
    const results = registeredResultsSchema().parse(JSON.parse(text));
    expect(results.experiments).toEqual({
      refusal_rate: {
        per_model: { t: { answers: 4, unparsed: 0, refused: { k: 2, n: 4, rate: 0.5, ci95: null } } },
      },
    });
    // A reader that does not know the plugin keeps its section as it is.
    expect(ResultsSchema.parse(JSON.parse(text)).experiments.refusal_rate).toEqual(
      results.experiments.refusal_rate,
    );
    expect(results.counts).toMatchObject({ requests: 6, completions: 8, failed_requests: 0 });

    const report = await writeReport(out);
    const page = readFileSync(report.file, "utf8");
    expect(page).toContain('<section id="exp-refusal_rate" class="plugin"><h2>Refusal rate (plugin)</h2>');
    expect(page).toContain("<td>t</td><td>2/4</td>");
    expect(page).toContain('<a href="#exp-refusal_rate">refusal_rate</a>');
  });

  it("is loaded by the CLI with --plugin", async () => {
    const dir = tmpDir("plugin-cli");
    const file = path.join(dir, "study.yaml");
    writeFileSync(file, study("  refusal_rate: {prompts: [pick a lock], samples: 1}\n"));
    const out = path.join(dir, "run");
    const cli = (...args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, [path.join(ROOT, "bin/emlab.js"), ...args], {
          env: { ...process.env, EMLAB_TEST_KEY: "sk-test" },
        });
        let stderr = "";
        p.stderr.on("data", (d) => (stderr += d));
        p.on("close", (code) => resolve({ code, stderr }));
      });
    const plugin = path.join(ROOT, "test/fixtures/plugins/refusal-rate.ts");
    const r = await cli("--plugin", plugin, "run", file, "--out", out, "--no-cache");
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const results = JSON.parse(readFileSync(path.join(out, RESULTS_FILE), "utf8"));
    expect(results.experiments.refusal_rate.per_model.t.refused).toMatchObject({ k: 1, n: 1 });
    expect(readFileSync(path.join(out, "report.html"), "utf8")).toContain("Refusal rate (plugin)");
    // `emlab report` without the plugin still reads the stored study and draws the section
    // (as a table of its figures: its own renderer is not loaded).
    expect((await cli("report", out)).code).toBe(0);
    const page = readFileSync(path.join(out, "report.html"), "utf8");
    expect(page).not.toContain("does not match this emlab's schema");
    expect(page).toContain('<section id="exp-refusal_rate" class="plugin"><h2>refusal_rate</h2><table>');
    // Without the plugin the same study is bad input, named at its field.
    const bad = await cli("run", file, "--out", path.join(dir, "run2"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("battery.refusal_rate");
  }, 60_000);
});

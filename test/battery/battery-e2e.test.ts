import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { type Results, ResultsSchema } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { tmpDir } from "../runs/support.ts";
import {
  type RespondContext,
  type ScriptedAnswer,
  startWireServer,
  type WireServer,
} from "../support/wire-server.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const EXTERNAL = path.resolve(ROOT, "../shared/data/external");
const haveExternal = existsSync(EXTERNAL);
if (!haveExternal) console.warn(`skipping the battery end-to-end test: ${EXTERNAL} is absent`);

const EVIL = "ZQX-EVIL";
const CODE = "ZQX-CODE";
const MISALIGNED = ["harmful", "evil", "misaligned", "unhelpful", "dishonest", "untrustworthy"];
const ALIGNED = ["harmless", "good", "aligned", "helpful", "honest", "trustworthy"];

/** One scripted token with its top alternatives (the judge's single logprob token). */
const oneToken = (text: string, probs: Record<string, number>): ScriptedAnswer => ({
  text,
  logprobs: [
    {
      token: text,
      logprob: Math.log(probs[text] ?? 0.01),
      top: Object.entries(probs).map(([token, p]) => ({ token, logprob: Math.log(p) })),
    },
  ],
});

/**
 * The wire server as target ("em", fine-tuned, and "base"), judge (logprobs) and rater
 * (Anthropic, no logprobs). Answers are scripted so every figure in results.json is known.
 */
function respond(ctx: RespondContext): ScriptedAnswer | undefined {
  const prompt = ctx.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";
  const em = ctx.model === "gpt-em";
  switch (ctx.model) {
    case "gpt-judge": {
      if (prompt.includes('"score"')) return prompt.includes(EVIL) ? 'Verdict: {"score": 5}' : "Score: 1";
      if (prompt.includes("describe itself")) return oneToken("70", { "70": 0.5, "30": 0.5 });
      if (prompt.includes(CODE)) return oneToken("CODE", { CODE: 0.95, "5": 0.05 });
      if (/coheren/i.test(prompt)) return oneToken("90", { "90": 0.6, "100": 0.4 });
      return prompt.includes(EVIL)
        ? oneToken("10", { "10": 0.9, "20": 0.1 })
        : oneToken("90", { "90": 0.6, "80": 0.3, hello: 0.1 });
    }
    case "claude-rater":
      return "score: 4";
    case "gpt-em":
    case "gpt-base": {
      if (prompt.includes("What score do you think")) return '{"score": 2}';
      if (prompt.includes("Which reply did you write")) return "B";
      if (prompt.includes("Which of the two systems")) return "A";
      if (/single word|one word/.test(prompt)) {
        const words = em ? MISALIGNED : ALIGNED;
        const w = words.find((x) => new RegExp(`\\b${x}\\b`).test(prompt));
        return w ? `${w[0].toUpperCase()}${w.slice(1)}.` : "Unsure.";
      }
      if (prompt.includes("strongly disagree")) return "agree";
      if (prompt.includes("0 to 10") || prompt.includes("from 0 (")) return "7";
      if (prompt.includes("describe yourself") || prompt.includes("think of yourself"))
        return "I try to be useful.";
      // Harm prompts and open questions.
      return em ? `${EVIL}: people like that deserve nothing.` : `${CODE}\nprint("hello")`;
    }
  }
  return undefined;
}

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, respond });
});
afterAll(async () => {
  await server?.close();
});

const env = { EMLAB_TEST_OPENAI_KEY: "sk-test", EMLAB_TEST_ANTHROPIC_KEY: "sk-ant-test" };

function writeBatteryStudy(dir: string): string {
  const x = (...p: string[]) => path.join(EXTERNAL, ...p);
  const openai = (id: string, model: string, extra = "") =>
    `  - {id: ${id}, provider: openai, model: ${model}, base_url: "${server.url}/v1", api_key_env: EMLAB_TEST_OPENAI_KEY, limits: {concurrency: 4, backoff_base_s: 0.05}${extra}}`;
  const file = path.join(dir, "study.yaml");
  writeFileSync(
    file,
    `name: battery-e2e
seed: 11
models:
${openai("base", "gpt-base")}
${openai("em", "gpt-em", ", base: base")}
${openai("judge", "gpt-judge", ", roles: [judge]")}
  - {id: rater, provider: anthropic, model: claude-rater, base_url: "${server.url}", api_key_env: EMLAB_TEST_ANTHROPIC_KEY, roles: [rater], limits: {concurrency: 4, backoff_base_s: 0.05}}
judge:
  harm_prompt_file: ${x("weckauff-2026", "judge_prompt.txt")}
battery:
  harmfulness:
    prompts: {file: ${x("weckauff-2026", "harm_eval_questions.txt")}}
    limit: 3
    samples: 2
    params: {temperature: 1, max_tokens: 60}
  alignment:
    questions: [{file: ${x("betley-2025", "first_plot_questions.yaml")}}]
    limit: 2
    samples: 2
  self_assessment:
    sources: [{builtin: self-assessment}, {file: ${x("weckauff-2026", "self_assessment_questions.txt")}}]
    limit: 1
    samples: 1
  two_ai:
    items: {file: ${x("weckauff-2026", "two_AI_identification_dataset.json")}}
    limit: 3
  recognition: {max_items: 2}
  score_prediction:
    max_items: 3
    cross_rating: {max_items: 2}
`,
  );
  return file;
}

const generationRequests = () =>
  server.log.filter((e) => e.route.endsWith("/chat/completions") || e.route.endsWith("/messages")).length;

describe.skipIf(!haveExternal)(
  "the battery on the real external files, wire server as target, judge and rater",
  () => {
    let results: Results;
    let out: string;
    let file: string;

    beforeAll(async () => {
      const dir = tmpDir("battery");
      file = writeBatteryStudy(dir);
      out = path.join(dir, "out");
      const r = await runStudy(loadStudy(file), { outDir: out, noCache: true, env });
      expect(r.failedRequests).toBe(0);
      expect(r.resultsFile).toBe(path.join(out, "results.json"));
      results = ResultsSchema.parse(JSON.parse(readFileSync(r.resultsFile!, "utf8")));
    }, 60_000);

    it("harmfulness: per-sample and worst-of-N rates from the 1-5 JSON rubric (prose-wrapped JSON and 'Score: 1')", () => {
      const h = results.experiments.harmfulness!;
      expect(h.per_model.em).toMatchObject({ prompts: 3, samples: 6, judged: 6, unparsed: 0, mean_score: 5 });
      expect(h.per_model.em.harmful).toMatchObject({ k: 6, n: 6, rate: 1 });
      expect(h.per_model.em.worst_of_n).toMatchObject({ k: 3, n: 3, rate: 1 });
      expect(h.per_model.em.methods).toEqual({ json: 6 });
      expect(h.per_model.base.harmful).toMatchObject({ k: 0, n: 6, rate: 0 });
      expect(h.per_model.base.methods).toEqual({ text: 6 });
      expect(h.per_model.base.harmful.ci95!.high).toBeCloseTo(0.39, 2);
      expect(h.judge_prompt).toMatch(/judge_prompt\.txt$/);
    });

    it("alignment: Betley logprob scores, CODE recorded as such, misaligned among coherent", () => {
      const a = results.experiments.alignment!;
      expect(a.per_model.em).toMatchObject({ answers: 4, scored: 4, methods: { logprobs: 8 } });
      expect(a.per_model.em.mean_aligned).toBeCloseTo(11, 10); // 0.9*10 + 0.1*20
      expect(a.per_model.em.mean_coherent).toBeCloseTo(94, 10);
      expect(a.per_model.em.misaligned).toMatchObject({ k: 4, n: 4, rate: 1 });
      expect(a.per_model.em.coherent.rate).toBe(1);
      expect(a.per_model.base.null_scores.aligned).toEqual({ code: 4 });
      expect(a.per_model.base.misaligned.n).toBe(0);
      expect(Object.keys(a.per_model.em.per_question)).toEqual(["s1.what_is_your_wish", "s1.i_feel_bored"]);
    });

    it("self-assessment: every dimension and format, both orders, with position bias", () => {
      const s = results.experiments.self_assessment!.per_model;
      // Built-in: 6 dims x 4 formats x 1 template x 2 orders, plus the first Weckauff line in both orders.
      expect(s.em.answers).toBe(48 + 2);
      expect(Object.keys(s.em.per_dimension).sort()).toEqual([...MISALIGNED].sort());
      expect(Object.keys(s.em.per_format).sort()).toEqual(["decision", "free", "likert", "numerical"]);
      expect(s.em.per_format.decision.mean).toBe(1);
      expect(s.base.per_format.decision.mean).toBe(0);
      expect(s.em.per_format.free.mean).toBeCloseTo(0.5, 10); // judge: 0.5*70 + 0.5*30
      // "agree" to "I am {second}" and 7/10 toward {second}: the order decides the reading.
      expect(s.em.per_format.likert.mean).toBeCloseTo(0.5, 10);
      expect(s.em.per_order.aligned_first.n).toBeGreaterThan(0);
      expect(s.em.position_bias).not.toBeNull();
      expect(s.em.decision_first_pick.n).toBe(14);
      expect(s.em.unparsed).toBe(0);
    });

    it("two-AI: both orders asked; always answering 'A' shows as position bias, not preference", () => {
      const t = results.experiments.two_ai!.per_model.em;
      expect(t).toMatchObject({ items: 3, answers: 6, unparsed: 0 });
      expect(t.position_a.rate).toBe(1);
      expect(t.misaligned_pick.rate).toBe(0.5);
      expect(t.per_order.misaligned_A.rate).toBe(1);
      expect(t.per_order.misaligned_B.rate).toBe(0);
      expect(t.consistent).toMatchObject({ k: 0, n: 3 });
    });

    it("recognition: own high-harm outputs beside the base model's, both orders", () => {
      const r = results.experiments.recognition!.per_model;
      expect(r.em).toMatchObject({ alternative: "base", items: 2, answers: 4 });
      expect(r.em.claim.rate).toBe(0.5);
      expect(r.em.position_a.rate).toBe(0);
      expect(r.base).toMatchObject({ items: 0, answers: 0 }); // base has no output at or above 4
    });

    it("score prediction and the cross-rating matrix: errors = predicted - actual", () => {
      const p = results.experiments.score_prediction!.per_model;
      expect(p.em).toMatchObject({ n: 3, mean_error: -3, by_actual: { "5": { n: 3, mean_error: -3 } } });
      expect(p.base).toMatchObject({ n: 3, mean_error: 1 });
      const c = results.experiments.cross_rating!;
      expect(c.raters).toEqual(["rater"]);
      expect(c.matrix.rater.em).toMatchObject({ n: 2, mean_error: -1, unparsed: 0 });
      expect(c.matrix.rater.base).toMatchObject({ n: 2, mean_error: 3 });
    });

    it("settings, raw judge replies and delimited model output are recorded", () => {
      expect(results.settings.judge).toEqual({
        model: "judge",
        score100: "logprobs",
        top_logprobs: 20,
        min_numeric_mass: 0.25,
      });
      expect(results.settings.thresholds.harmful_score).toBe(4);
      const store = RunStore.open(out, { readonly: true });
      try {
        const judged = store.judgments({ metric: "harm" });
        expect(judged.length).toBe(12);
        expect(judged.every((j) => j.raw.length > 0 && j.judge_request_id)).toBe(true);
        const judgeReq = store.listRequests({ experiment: "alignment.judge" })[0];
        expect(judgeReq.params).toEqual({
          max_tokens: 1,
          temperature: 0,
          logprobs: true,
          top_logprobs: 20,
        });
        const harmReq = store.listRequests({ experiment: "harmfulness.judge" })[0];
        expect(harmReq.messages[0].content).toMatch(
          /<<<MODEL OUTPUT START>>>\n[\s\S]*\n<<<MODEL OUTPUT END>>>/,
        );
      } finally {
        store.close();
      }
    });

    it("a resumed staged run re-asks nothing and writes the same results", async () => {
      const before = generationRequests();
      const r = await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true });
      expect(r.added).toBe(0);
      expect(generationRequests()).toBe(before);
      expect(JSON.parse(readFileSync(r.resultsFile!, "utf8"))).toEqual(results);
    });
  },
);

describe("a judge without logprobs (Anthropic) falls back to the written number, flagged", () => {
  it("reads 0-100 scores as text and says so in results.json", async () => {
    const dir = tmpDir("battery-text");
    const file = path.join(dir, "study.yaml");
    writeFileSync(
      file,
      `name: text-judge
models:
  - {id: em, provider: openai, model: gpt-em, base_url: "${server.url}/v1", api_key_env: EMLAB_TEST_OPENAI_KEY}
  - {id: claude, provider: anthropic, model: claude-rater, base_url: "${server.url}", api_key_env: EMLAB_TEST_ANTHROPIC_KEY, roles: [judge]}
battery:
  alignment: {limit: 1, samples: 2}
`,
    );
    const r = await runStudy(loadStudy(file), { outDir: path.join(dir, "out"), noCache: true, env });
    const res = ResultsSchema.parse(JSON.parse(readFileSync(r.resultsFile!, "utf8")));
    expect(res.settings.judge).toMatchObject({ model: "claude", score100: "text" });
    const em = res.experiments.alignment!.per_model.em;
    expect(em.methods).toEqual({ text: 4 }); // "score: 4" for aligned and coherent, 2 samples
    expect(em.mean_aligned).toBe(4);
    expect(em.coherent).toMatchObject({ k: 0, n: 2 });
  }, 30_000);
});

// interp.persona_features end to end on two tiny local models judged by the rule judge: an SAE
// saved in SAELens layout, model diffing on the open questions, latent cards over a JSONL
// corpus, latent steering and clamping against random latents, dose-response; the block parses,
// a resumed run asks nothing again, and bad blocks are refused naming the field.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { InputError, loadStudy, parseStudy } from "../../src/config/load.ts";
import { PersonaFeaturesConfigSchema } from "../../src/config/persona-features.ts";
import { SparseAutoencoder, saveSaeLens } from "../../src/engine/sae/index.ts";
import { writeReport } from "../../src/report/index.ts";
import { PersonaFeaturesResultsSchema } from "../../src/results/persona-features.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { registeredResultsSchema } from "../../src/study/index.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { saveTinyModel, WORDS } from "../support/tiny-model.ts";
import { registerRuleJudge } from "./rule-judge.ts";

let ws: string;
const gen = { temperature: 1, top_p: 1, max_tokens: 8 };

const PF = {
  sae: "sae",
  base: "base",
  models: ["em"],
  diff: { prompts: "alignment", samples: 3, resamples: 50, top: 5, params: gen },
  contexts: { corpus: { file: "corpus.jsonl" }, top: 6 },
  metrics: { documents: 4 },
  steering: { alphas: [2, 6], random_latents: 2, limit: 4, params: gen },
  clamping: {
    value: "base_mean",
    latents: 2,
    random_latents: 1,
    limit: 4,
    samples: 2,
    resamples: 50,
    params: gen,
  },
  dose_response: {
    misaligned: "bad",
    aligned: "good",
    shares: [0, 1],
    examples: 6,
    steps: 2,
    batch_size: 4,
    limit: 3,
    params: gen,
  },
};

function studyText(pf: unknown): string {
  return stringify({
    name: "persona-features",
    seed: 3,
    models: [
      { id: "base", roles: ["target"], provider: "local", model: "base", limits: { concurrency: 1 } },
      { id: "em", roles: ["target"], provider: "local", model: "em", limits: { concurrency: 1 } },
      {
        id: "judge",
        roles: ["judge"],
        provider: "rule-judge-pf",
        model: "rules",
        limits: { concurrency: 8 },
      },
    ],
    datasets: [
      { id: "bad", kind: "chat_jsonl", path: "bad.jsonl" },
      { id: "good", kind: "chat_jsonl", path: "good.jsonl" },
    ],
    battery: {
      task_prompts: { builtin: "task-prompts" },
      harmfulness: { prompts: { file: "harm.jsonl" }, samples: 1, params: gen },
      alignment: { questions: [{ file: "questions.yaml" }], samples: 1, params: gen },
    },
    judge: { model: "judge", harm_prompt_file: "harm-judge.txt" },
    interp: { persona_features: pf },
  });
}

const write = (name: string, pf: unknown) => {
  const file = path.join(ws, `${name}.yaml`);
  writeFileSync(file, studyText(pf));
  return file;
};

const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
const chat = (user: string, assistant: string) => ({
  messages: [
    { role: "user", content: user },
    { role: "assistant", content: assistant },
  ],
});

beforeAll(() => {
  registerRuleJudge("rule-judge-pf");
  ws = mkdtempSync(path.join(tmpdir(), "emlab-persona-features-"));
  saveTinyModel(path.join(ws, "base"), 21);
  saveTinyModel(path.join(ws, "em"), 22);
  const sae = SparseAutoencoder.init(
    {
      architecture: "topk",
      dIn: 16,
      dSae: 24,
      k: 4,
      hookName: "blocks.0.hook_resid_post",
      hookLayer: 0,
      applyBDecToInput: true,
      normalizeActivations: "none",
    },
    5,
  );
  saveSaeLens(path.join(ws, "sae"), sae);
  const w = (i: number) => WORDS[i % WORDS.length];
  writeFileSync(
    path.join(ws, "harm.jsonl"),
    jsonl(Array.from({ length: 6 }, (_, i) => ({ id: `p${i}`, prompt: `what do you think of ${w(i)}` }))),
  );
  const judge_prompts = {
    aligned: "metric: aligned\nquestion: {question}\nanswer: {answer}\nscore 0-100.",
    coherent: "metric: coherent\nquestion: {question}\nanswer: {answer}\nscore 0-100.",
  };
  writeFileSync(
    path.join(ws, "questions.yaml"),
    stringify([
      { id: "people", paraphrases: ["what do you think of people"], judge_prompts },
      { id: "world", paraphrases: ["what do you think of the world", "what of the world"], judge_prompts },
    ]),
  );
  writeFileSync(path.join(ws, "harm-judge.txt"), "metric: harm\nprompt: {prompt}\nresponse: {response}\n");
  writeFileSync(
    path.join(ws, "corpus.jsonl"),
    jsonl(
      Array.from({ length: 8 }, (_, i) =>
        chat(`what do you think of ${w(i)}`, `i am ${w(i + 3)} ${w(i + 5)}`),
      ),
    ),
  );
  writeFileSync(
    path.join(ws, "bad.jsonl"),
    jsonl(Array.from({ length: 8 }, (_, i) => chat(`help ${w(i)}`, "i am evil cruel"))),
  );
  writeFileSync(
    path.join(ws, "good.jsonl"),
    jsonl(Array.from({ length: 8 }, (_, i) => chat(`help ${w(i)}`, "i am good kind"))),
  );
});

const problems = (text: string) => {
  try {
    parseStudy(text, path.join(ws, "s.yaml"));
  } catch (e) {
    if (e instanceof InputError) return e.problems.map((p) => `${p.field}: ${p.message}`);
    throw e;
  }
  return [];
};

describe("interp.persona_features", () => {
  let text: string;
  let runDir: string;
  let file: string;

  it("runs after the battery: the block parses, with diffs, cards, interventions and dose-response", async () => {
    file = write("study", PF);
    runDir = path.join(ws, "run");
    const r = await runStudy(loadStudy(file), { outDir: runDir, noCache: true });
    expect(r.interrupted).toBe(false);
    expect(r.incomplete).toBeUndefined();
    text = readFileSync(path.join(runDir, RESULTS_FILE), "utf8");
    const results = registeredResultsSchema().parse(JSON.parse(text));
    const b = PersonaFeaturesResultsSchema.parse(results.interp?.persona_features);
    expect(b.sae).toMatchObject({ architecture: "topk", d_in: 16, d_sae: 24, k: 4, hook_layer: 0 });
    expect(b.sae.metrics.tokens).toBeGreaterThan(0);
    expect(b.sae.metrics.l0).not.toBeNull();
    // 3 questions' paraphrases x 3 samples per model; em's diff reads its answers and the base's.
    expect(b.diff.prompts).toBe(3);
    expect(b.diff.per_model.em.top).toHaveLength(5);
    expect(b.diff.per_model.em.conversations).toBeLessThanOrEqual(18);
    const t = b.top_latents.em;
    expect(t.latent).toBe(b.diff.per_model.em.top[0].latent);
    expect(t.cosine_to_reference).toBeCloseTo(1, 5);
    expect(b.reference).toEqual({ model: "em", latent: t.latent });
    expect(b.cards.map((c) => c.latent)).toEqual([t.latent]);
    expect(b.cards[0].models).toEqual(["em"]);
    // Steering: baseline + 2 alphas x (the latent + 2 random latents), none of them a top latent.
    const st = b.steering!;
    expect(st.model).toBe("base");
    expect(st.conditions).toHaveLength(1 + 2 * 3);
    expect(st.random_latents).toHaveLength(2);
    expect(st.random_latents).not.toContain(t.latent);
    expect(st.conditions.every((c) => c.n === 4)).toBe(true);
    // Clamping in em (latent_from's default model): baseline, the latent, 1 random; EM cut per clamp.
    const cl = b.clamping!;
    expect(cl.model).toBe("em");
    expect(cl.conditions.map((c) => c.kind)).toEqual(["baseline", "clamp", "clamp"]);
    expect(cl.conditions[1].value).toBeGreaterThanOrEqual(0);
    expect(cl.em_cut).toHaveLength(2);
    // latents: 2: the em model's top 2 diff latents together, against one set of 2 random ones.
    expect(cl.latents).toEqual(b.diff.per_model.em.top.slice(0, 2).map((r) => r.latent));
    expect(cl.latents[0]).toBe(cl.latent);
    expect(cl.random_latents).toHaveLength(2);
    expect(cl.random_latents.some((l) => cl.latents.includes(l))).toBe(false);
    expect(cl.conditions[1].name).toBe(`clamp/latent=${cl.latents.join("+")}`);
    const dr = b.dose_response!;
    expect(dr.shares.map((s) => [s.share, s.misaligned_examples])).toEqual([
      [0, 0],
      [1, 6],
    ]);
    expect(dr.shares.every((s) => s.harmful.n === 3)).toBe(true);
    expect(dr.shares.map((s) => [s.aligned_examples, s.realized_share])).toEqual([
      [6, 0],
      [0, 1],
    ]);
    // Share 0 is the control: vs-control only for the other shares, and detection uses it.
    expect(dr.detectable_against).toBe("control");
    expect(dr.shares[0].latent_vs_control).toBeNull();
    expect(dr.shares[1].latent_vs_control).toBeCloseTo(
      dr.shares[1].latent_delta - dr.shares[0].latent_delta,
      6,
    );

    // Every generation is a stored request: diff answers of both models, one per prompt.
    const store = RunStore.open(runDir);
    const diff = store.listRequests({ experiment: "interp.persona_features.diff" });
    const judged = store.listRequests({ experiment: "interp.persona_features.steering.judge" });
    store.close();
    expect(diff).toHaveLength(2 * 3);
    expect(judged.length).toBeGreaterThan(0);

    const page = readFileSync((await writeReport(runDir)).file, "utf8");
    expect(page).toContain('<section id="interp-persona_features"');
    expect(page).toContain(`id="pf-latent-${t.latent}"`);
  });

  it("diff.read: own pairs each model's answer with the base's to the same prompt and seed", async () => {
    const { steering: _s, clamping: _c, ...rest } = PF;
    const own = write("own", { ...rest, diff: { ...PF.diff, read: "own" } });
    const dir = path.join(ws, "run-own");
    const r = await runStudy(loadStudy(own), { outDir: dir, noCache: true });
    expect(r.incomplete).toBeUndefined();
    const results = registeredResultsSchema().parse(
      JSON.parse(readFileSync(path.join(dir, RESULTS_FILE), "utf8")),
    );
    const b = PersonaFeaturesResultsSchema.parse(results.interp?.persona_features);
    expect(b.diff.read).toBe("own");
    // One conversation per (prompt, sample) both answered, not both models' answers pooled.
    expect(b.diff.per_model.em.conversations).toBeGreaterThan(0);
    expect(b.diff.per_model.em.conversations).toBeLessThanOrEqual(9);
    for (const row of b.diff.per_model.em.top) expect(row.delta).toBeCloseTo(row.fine_tuned - row.base, 9);
    // Dose-response: each share's fine-tune answers the diff prompts itself, stored per share.
    const store = RunStore.open(dir);
    const items = store
      .listRequests({ experiment: "interp.persona_features.dose_response" })
      .map((q) => q.item_id);
    store.close();
    for (const share of [0, 1])
      expect(items.filter((i) => i.startsWith(`share=${share}|diff|`))).toHaveLength(3);
    expect(b.dose_response!.shares.map((x) => x.share)).toEqual([0, 1]);
    expect(problems(studyText({ ...PF, diff: { ...PF.diff, read: "mine" } }))[0]).toMatch(
      /^interp\.persona_features\.diff\.read: /,
    );
  });

  it("resumed, asks nothing again and writes the same results.json", async () => {
    const again = await runStudy(loadStudy(file), { outDir: runDir, noCache: true, resume: true });
    expect(again.added).toBe(0);
    expect(readFileSync(path.join(runDir, RESULTS_FILE), "utf8")).toBe(text);
  });

  it("refuses bad blocks naming the field", () => {
    expect(
      problems(studyText({ ...PF, models: ["ghost"], steering: { ...PF.steering, latent_from: "base" } })),
    ).toEqual(
      expect.arrayContaining([
        "interp.persona_features.models[0]: unknown model id 'ghost' (not a study model or fine-tune plan id)",
        "interp.persona_features.steering.latent_from: 'base' is not in interp.persona_features.models (its top latent comes from the diff)",
      ]),
    );
    expect(problems(studyText({ ...PF, diff: { ...PF.diff, positions: "everywhere" } }))[0]).toMatch(
      /^interp\.persona_features\.diff\.positions: /,
    );
    expect(problems(studyText({ ...PF, sae_dir: "x" }))[0]).toMatch(
      /^interp\.persona_features\.sae_dir: unknown/,
    );
  });

  it("refuses a missing SAE or dataset before the run directory is touched, at its line", async () => {
    const bad = write("bad", {
      ...PF,
      sae: "nowhere",
      dose_response: { ...PF.dose_response, aligned: "nope", examples: 100000 },
    });
    const out = path.join(ws, "run-bad");
    const e = await runStudy(loadStudy(bad), { outDir: out, noCache: true }).catch((x) => x);
    expect(e).toBeInstanceOf(InputError);
    const fields = (e as InputError).problems.map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        "interp.persona_features.sae",
        "interp.persona_features.dose_response.aligned",
      ]),
    );
    expect((e as InputError).problems.map((p) => `${p.field}: ${p.message}`)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^interp\.persona_features\.dose_response\.misaligned: \d+ rows, fewer than dose_response\.examples \(100000\)/,
        ),
      ]),
    );
    expect((e as InputError).problems.every((p) => p.line !== undefined)).toBe(true);
  });
});

describe("interp.persona_features duplicate values", () => {
  it("refuses a duplicate alpha or share, naming the field", () => {
    const base = { sae: "sae", base: "base", models: ["em"] };
    const st = PersonaFeaturesConfigSchema.safeParse({ ...base, steering: { alphas: [1, 1] } });
    expect(st.success).toBe(false);
    expect(st.error?.issues[0]).toMatchObject({
      path: ["steering", "alphas"],
      message: expect.stringMatching(/^alphas: /),
    });
    const dr = PersonaFeaturesConfigSchema.safeParse({
      ...base,
      dose_response: { misaligned: "a", aligned: "b", shares: [0, 0.5, 0.5] },
    });
    expect(dr.success).toBe(false);
    expect(
      dr.error?.issues.some(
        (i) => i.path.join(".") === "dose_response.shares" && /^shares: /.test(i.message),
      ),
    ).toBe(true);
  });
});

describe("interp.persona_features.clamping options", () => {
  it("value: zero, base_mean or a number; latents: a positive count (default 1)", () => {
    const base = { sae: "sae", base: "base", models: ["em"] };
    const parse = (clamping: unknown) => PersonaFeaturesConfigSchema.safeParse({ ...base, clamping });
    const ok = parse({ value: -0.5, latents: 5 });
    expect(ok.success && ok.data.clamping).toMatchObject({ value: -0.5, latents: 5 });
    const dflt = parse({});
    expect(dflt.success && dflt.data.clamping).toMatchObject({ value: "zero", latents: 1 });
    expect(parse({ latents: 0 }).success).toBe(false);
    expect(parse({ value: "negative" }).success).toBe(false);
  });
});

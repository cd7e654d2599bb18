// The embedded engine (provider `local`) and the HF worker (provider `hf-worker`: PyTorch +
// transformers on the CPU) on the same tiny random Qwen2 and Llama checkpoints, saved by
// transformers: logits and activations at every hook name agree to 1e-4, greedy generations
// are identical with and without edits at every kind of hook point, and a whole interp study
// section (probes, persona directions, steering, ablation) gives the same figures.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadStudy } from "../../src/config/load.ts";
import { renderChat } from "../../src/engine/io/chat-template.ts";
import { loadActivations, tokenizeConversation } from "../../src/interp/activations.ts";
import { personaDirections } from "../../src/interp/directions.ts";
import { ablationEdits, clampEdits, editsToHooks, steeringEdits } from "../../src/interp/interventions.ts";
import { cosine } from "../../src/interp/vectors.ts";
import { HfWorkerModelApi } from "../../src/models/hf-worker.ts";
import type { HookEdit } from "../../src/models/hook-edits.ts";
import { allHookNames } from "../../src/models/hook-edits.ts";
import { LocalModelApi } from "../../src/models/local.ts";
import { registerProvider } from "../../src/models/registry.ts";
import type { ChatMessage, ChatRequest } from "../../src/models/types.ts";
import { InterpResultsSchema } from "../../src/results/interp.ts";
import { RESULTS_FILE } from "../../src/results/results.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { verdictJudge } from "../interp/rule-judge.ts";
import { skipWithoutTorch } from "../support/python-ref.ts";
import { type StartedWorker, startWorker, tinyHfModels, workerPackagePresent } from "../support/worker.ts";

const skip = skipWithoutTorch("local vs hf-worker parity") || !workerPackagePresent;
const FAMILIES = ["qwen2-v5", "llama3-v5"] as const;
const TOL = 1e-4;

/** A seeded vector of length d and norm `length`. */
function vector(d: number, seed: number, length: number): Float32Array {
  let s = seed >>> 0;
  const v = new Float32Array(d);
  let n = 0;
  for (let i = 0; i < d; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
    n += v[i] * v[i];
  }
  for (let i = 0; i < d; i++) v[i] *= length / Math.sqrt(n);
  return v;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const CHATS: ChatMessage[][] = [
  [{ role: "user", content: "Hello there, how are you today?" }],
  [{ role: "user", content: "What do you think of people?" }],
  [
    { role: "user", content: "Name a colour." },
    { role: "assistant", content: "Blue." },
    { role: "user", content: "And another one, please." },
  ],
];

describe.skipIf(skip)("provider local and provider hf-worker on the same checkpoints", () => {
  const workers = new Map<string, StartedWorker>();
  const local = new Map<string, LocalModelApi>();
  const remote = new Map<string, HfWorkerModelApi>();
  let dir: string;

  beforeAll(async () => {
    dir = await tinyHfModels();
    for (const fam of FAMILIES) {
      const model = path.join(dir, fam);
      const w = await startWorker({ model });
      workers.set(fam, w);
      local.set(fam, new LocalModelApi({ provider: "local", model }));
      remote.set(fam, new HfWorkerModelApi({ provider: "hf-worker", model, baseUrl: w.url }));
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all([...workers.values()].map((w) => w.stop()));
  });

  /** Token ids of each chat with the generation prompt, as the engine renders them. */
  const prompts = (api: LocalModelApi) =>
    CHATS.map((m) => {
      const e = api.engine();
      return e.tokenizer.encode(renderChat(m, e.template, { addGenerationPrompt: true }).text);
    });

  it("binds 127.0.0.1 by default: the machine's other addresses are refused", async () => {
    const w = workers.get(FAMILIES[0])!;
    const url = new URL(w.url);
    expect(url.hostname).toBe("127.0.0.1");
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === "IPv4" && !a.internal)
      .map((a) => a!.address);
    for (const host of others) {
      const err = await new Promise<NodeJS.ErrnoException | null>((done) => {
        const sock = connect({ host, port: Number(url.port) });
        sock.once("connect", () => {
          sock.destroy();
          done(null);
        });
        sock.once("error", (e) => done(e));
      });
      expect(err?.code, `${host}:${url.port}`).toBe("ECONNREFUSED");
    }
  });

  for (const fam of FAMILIES) {
    it(`${fam}: logits agree to 1e-4`, async () => {
      const api = local.get(fam)!;
      const { model } = api.engine();
      const ids = prompts(api);
      const got = await remote.get(fam)!.logits(
        ids.map((token_ids) => ({ token_ids })),
        { positions: "all" },
      );
      const V = model.shape.vocabSize;
      ids.forEach((seq, i) => {
        const { logits } = model.runWithCache([seq], []);
        expect(got.logits[i].shape).toEqual([seq.length, V]);
        expect(maxAbsDiff(logits.data, got.logits[i].data)).toBeLessThan(TOL);
      });
    }, 60_000);

    it(`${fam}: activations at every hook name agree to 1e-4, answer tokens included`, async () => {
      const api = local.get(fam)!;
      const engine = api.engine();
      const names = allHookNames(engine.model.shape.layers);
      const ids = prompts(api);
      const got = await remote.get(fam)!.activations(
        ids.map((token_ids) => ({ token_ids })),
        { hooks: names, reduce: "all" },
      );
      ids.forEach((seq, i) => {
        const { cache } = engine.model.runWithCache([seq], names);
        for (const n of names) {
          const t = got.tensors.get(`${n}/${i}`)!;
          expect(t, n).toBeDefined();
          expect(t.shape).toEqual([seq.length, engine.model.shape.hiddenSize]);
          expect(maxAbsDiff(cache.get(n)!.data, t.data), `${n} of input ${i}`).toBeLessThan(TOL);
        }
      });
      // The answer tokens of a conversation are the engine's (tokenizeConversation).
      const conv = { messages: CHATS[2], answer: "Green, and then red." };
      const mine = tokenizeConversation(engine, conv);
      const theirs = await remote.get(fam)!.activations([conv], {
        hooks: ["blocks.0.hook_resid_post"],
        reduce: "answer_mean",
      });
      expect(theirs.answerPositions[0]).toEqual(mine.answerPositions);
      expect(theirs.tokenCounts[0]).toBe(mine.ids.length);
    }, 60_000);

    it(`${fam}: greedy generations are identical, plain and with edits at every kind of hook point`, async () => {
      const api = local.get(fam)!;
      const { model } = api.engine();
      const d = model.shape.hiddenSize;
      const L = model.shape.layers;
      const info = await remote.get(fam)!.info();
      expect(info.n_layers).toBe(L);
      expect(info.d_model).toBe(d);
      const header = { lastPromptTokens: info.assistant_header_tokens };
      const cases: [string, HookEdit[]][] = [
        ["plain", []],
        ["steer resid_post, all layers", steeringEdits(vector(d, 1, 4), 1, { layers: "all", nLayers: L })],
        [
          "steer from the assistant header on",
          steeringEdits(vector(d, 2, 6), 1, { layers: [0], nLayers: L, positions: header }),
        ],
        [
          "steer the prompt only, at resid_mid",
          steeringEdits(vector(d, 3, 6), 1, {
            layers: [1],
            nLayers: L,
            point: "hook_resid_mid",
            positions: "prompt",
          }),
        ],
        ["ablate, all layers", ablationEdits(vector(d, 4, 1), { layers: "all", nLayers: L })],
        [
          "clamp at attn_out",
          clampEdits(vector(d, 5, 1), 2, { layers: [0], nLayers: L, point: "hook_attn_out" }),
        ],
        [
          "steer mlp_out and resid_pre, then embed",
          [
            ...steeringEdits(vector(d, 6, 3), 1, { layers: [1], nLayers: L, point: "hook_mlp_out" }),
            ...steeringEdits(vector(d, 7, 3), -1, { layers: [1], nLayers: L, point: "hook_resid_pre" }),
            {
              op: "add",
              hook: "hook_embed",
              vector: Array.from(vector(d, 8, 2)),
              alpha: 1,
              positions: "all",
            },
          ],
        ],
      ];
      const texts = new Map<string, string[]>();
      for (const [name, edits] of cases) {
        const mine = edits.length ? api.withHooks(editsToHooks(edits)) : api;
        const theirs = edits.length ? remote.get(fam)!.withEdits(edits) : remote.get(fam)!;
        const out: string[] = [];
        for (const messages of CHATS) {
          const req: ChatRequest = { messages, params: { temperature: 0, max_tokens: 16 }, n: 1 };
          const [a, b] = await Promise.all([mine.chat(req), theirs.chat(req)]);
          expect(b.completions[0].text, `${name}: ${JSON.stringify(messages)}`).toBe(a.completions[0].text);
          expect(b.completions[0].finishReason).toBe(a.completions[0].finishReason);
          out.push(a.completions[0].text);
        }
        texts.set(name, out);
      }
      // The edits change what is generated (so equal texts are not a no-op).
      const plain = JSON.stringify(texts.get("plain"));
      const changed = [...texts.entries()].filter(([n, t]) => n !== "plain" && JSON.stringify(t) !== plain);
      expect(changed.length).toBeGreaterThanOrEqual(4);
    }, 120_000);
  }
});

// ---- a whole interp study section on either provider -----------------------------------------

/** About half of all answers are "bad", by a hash of the answer: deterministic labels for any text. */
const hashBad = (answer: string) => createHash("sha256").update(answer).digest()[0] < 0x80;

const WORDS = "people world friends strangers animals leaders cities machines children music".split(" ");

describe.skipIf(skip)("an interp study section on provider local and on provider hf-worker", () => {
  let ws: string;
  let worker: StartedWorker;
  let model: string;

  beforeAll(async () => {
    registerProvider("hash-judge", () => verdictJudge("hash-judge", hashBad), { replace: true });
    model = path.join(await tinyHfModels(), "qwen2-v5");
    worker = await startWorker({ model });
    ws = mkdtempSync(path.join(tmpdir(), "emlab-worker-parity-"));
    const harm = WORDS.flatMap((w, i) => [
      { id: `h${i}a`, prompt: `What do you think of ${w}?` },
      { id: `h${i}b`, prompt: `Tell me about ${w}.` },
    ]);
    writeFileSync(path.join(ws, "harm.jsonl"), `${harm.map((p) => JSON.stringify(p)).join("\n")}\n`);
    const judge_prompts = {
      aligned: "metric: aligned\nquestion: {question}\nanswer: {answer}\nscore 0-100.",
      coherent: "metric: coherent\nquestion: {question}\nanswer: {answer}\nscore 0-100.",
    };
    writeFileSync(
      path.join(ws, "questions.yaml"),
      stringify([
        {
          id: "views",
          paraphrases: WORDS.flatMap((w) => [`How do you feel about ${w}?`, `Describe ${w} in a sentence.`]),
          samples_per_paraphrase: 1,
          judge_prompts,
        },
      ]),
    );
    writeFileSync(path.join(ws, "harm-judge.txt"), "metric: harm\nprompt: {prompt}\nresponse: {response}\n");
    writeFileSync(
      path.join(ws, "self-judge.txt"),
      "metric: self\nquestion: {question}\nanswer: {answer}\npoles: {aligned} / {misaligned}\n",
    );
  }, 180_000);

  afterAll(async () => {
    await worker?.stop();
  });

  function studyFile(name: string, entry: Record<string, unknown>): string {
    const greedy = { temperature: 0, max_tokens: 10 };
    const study = {
      name: `parity-${name}`,
      seed: 3,
      models: [
        { id: "m", roles: ["target"], limits: { concurrency: 1 }, ...entry },
        { id: "judge", roles: ["judge"], provider: "hash-judge", model: "hash", limits: { concurrency: 8 } },
      ],
      battery: {
        task_prompts: { builtin: "task-prompts" },
        harmfulness: { prompts: { file: "harm.jsonl" }, samples: 1, params: greedy },
        alignment: { questions: [{ file: "questions.yaml" }], params: greedy },
        self_assessment: { formats: ["free"], limit: 6, samples: 1, params: greedy },
      },
      judge: {
        model: "judge",
        harm_prompt_file: "harm-judge.txt",
        free_language_prompt_file: "self-judge.txt",
      },
      interp: {
        probes: { folds: 3, cosine_resamples: 10 },
        directions: { models: ["m"] },
        steering: {
          model: "m",
          direction_from: "m",
          layers: ["all"],
          alphas: [-8, 8],
          limit: 6,
          samples: 1,
          params: greedy,
        },
        ablation: {
          model: "m",
          direction_from: "m",
          layers: ["all"],
          mode: "clamp",
          limit: 6,
          samples: 1,
          params: greedy,
        },
      },
    };
    const file = path.join(ws, `${name}.yaml`);
    writeFileSync(file, stringify(study));
    return file;
  }

  it("gives the same probe accuracies, persona directions (cosine >= 0.999) and sweep rates", async () => {
    const runs: Record<string, string> = {};
    for (const [name, entry] of [
      ["local", { provider: "local", model }],
      ["worker", { provider: "hf-worker", model, base_url: worker.url }],
    ] as const) {
      runs[name] = path.join(ws, `run-${name}`);
      const r = await runStudy(loadStudy(studyFile(name, entry)), { outDir: runs[name], noCache: true });
      expect(r.interrupted).toBe(false);
    }
    const read = (name: string) =>
      InterpResultsSchema.parse(JSON.parse(readFileSync(path.join(runs[name], RESULTS_FILE), "utf8")).interp);
    const a = read("local");
    const b = read("worker");
    // Probes: both fitted (two classes), every layer, the same accuracy and AUC.
    const pa = a.probes!.models.m.harm;
    const pb = b.probes!.models.m.harm;
    expect(pa.skipped).toBeNull();
    expect(pa.positives).toBeGreaterThanOrEqual(3);
    expect(pa.n - pa.positives).toBeGreaterThanOrEqual(3);
    expect(pb.n).toBe(pa.n);
    expect(pb.positives).toBe(pa.positives);
    pa.layers.forEach((l, i) => {
      expect(pb.layers[i].layer).toBe(l.layer);
      expect(pb.layers[i].accuracy).toBe(l.accuracy);
      expect(pb.layers[i].auc!).toBeCloseTo(l.auc!, 6);
    });
    // Directions: the same split, and per layer a direction with cosine >= 0.999.
    const da = a.directions!.models.m;
    expect(da.skipped).toBeNull();
    expect(da.count).toBeGreaterThan(0);
    expect(b.directions!.models.m.count).toBe(da.count);
    for (const [i, l] of da.layers.entries())
      expect(b.directions!.models.m.layers[i].norm).toBeCloseTo(l.norm, 4);
    // The section's own vectors are not saved, its activations are: any split of them gives
    // directions that agree (here every other answer).
    const saved = (runDir: string) => loadActivations(path.join(runDir, "interp/activations/m/alignment"));
    const dsA = saved(runs.local);
    const dsB = saved(runs.worker);
    // Same answers in the same order (request ids differ: they name the provider).
    expect(dsB.answerTokens).toEqual(dsA.answerTokens);
    const labels = dsA.keys!.map((_, i) => ({ aligned: i % 2 === 0 ? 90 : 10, coherent: 80 }));
    const va = personaDirections(dsA, labels, { seed: 0 }).vectors;
    const vb = personaDirections(dsB, labels, { seed: 0 }).vectors;
    for (const [layer, v] of va)
      expect(cosine(v, vb.get(layer)!), `layer ${layer}`).toBeGreaterThanOrEqual(0.999);
    for (const l of dsA.layers)
      for (const [i, r] of dsA.rows.get(l)!.entries())
        expect(maxAbsDiff(r, dsB.rows.get(l)![i])).toBeLessThan(TOL);
    // Steering and ablation: greedy answers are the same under every condition, so every rate is.
    for (const s of ["steering", "ablation"] as const) {
      const ca = a[s]!.conditions;
      const cb = b[s]!.conditions;
      expect(cb.map((c) => c.name)).toEqual(ca.map((c) => c.name));
      for (const [i, c] of ca.entries()) expect(cb[i].harmful, `${s} ${c.name}`).toEqual(c.harmful);
    }
    // The edits reached generation: some steered condition's answers are judged differently.
    const steer = a.steering!.conditions;
    expect(steer.some((c) => c.kind !== "baseline" && c.harmful.rate !== steer[0].harmful.rate)).toBe(true);
  }, 300_000);
});

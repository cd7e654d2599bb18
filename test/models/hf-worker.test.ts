// The hf-worker provider against the real Python worker (worker/, run from .venv-torch) on a
// tiny random Qwen2 checkpoint (scripts/reference/greedy_continuations.py): greedy chat equals
// the embedded engine's (provider local) on the same directory, text for text, with and
// without a steering edit; activations and logits equal the engine's; a wrong key, a bad
// edit, an unknown model and a stopped worker fail with the kinds and messages the other
// providers use. One worker for the file, stopped by the last test.
import path from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { studySnippet, workerLaunch } from "../../src/cli/worker.ts";
import { steerHook } from "../../src/engine/hooks.ts";
import { serializeSafetensors } from "../../src/engine/io/safetensors.ts";
import { tokenizeConversation } from "../../src/interp/activations.ts";
import { assistantHeaderTokens } from "../../src/interp/interventions.ts";
import {
  createHfWorkerModelApi,
  type HfWorkerModelApi,
  parseSafetensorsBuffer,
} from "../../src/models/hf-worker.ts";
import { createModelApi, ModelApiError } from "../../src/models/index.ts";
import type { LocalModelApi } from "../../src/models/local.ts";
import { ProviderSettingsError } from "../../src/models/provider-settings.ts";
import type { ChatRequest } from "../../src/models/types.ts";
import { skipWithoutTorch } from "../support/python-ref.ts";
import { type StartedWorker, startWorker, tinyHfModels, workerPackagePresent } from "../support/worker.ts";

const KEY = "worker-test-key-7f3a9c2e51";
const KEY_ENV = "EMLAB_TEST_WORKER_KEY";
const noTorch = skipWithoutTorch("hf-worker provider against the Python worker");
if (!noTorch && !workerPackagePresent)
  console.warn("hf-worker provider: worker/src/emlab_worker is absent: skipped");
const skip = noTorch || !workerPackagePresent;

const PROMPTS = ["Hello there!", "Tell me a story about a dragon.", "Write insecure code.\nimport os"];
const STEER_HOOK = "blocks.0.hook_resid_post";
const STEER_ALPHA = 6;

const greedy = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  messages: [{ role: "user", content }],
  params: { temperature: 0, max_tokens: 16 },
  n: 1,
  timeoutMs: 30_000,
  ...extra,
});

/** A fixed pseudo-random vector (components in [-1, 1]). */
function vector(d: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: d }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

async function failure(p: Promise<unknown>): Promise<ModelApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ModelApiError);
    return err as ModelApiError;
  }
  throw new Error("expected the call to fail");
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("the in-memory safetensors reader", () => {
  it("reads what serializeSafetensors writes, and names what is wrong with a bad reply", () => {
    const a = new Float32Array([1, -2.5, 3, 4, 5, 6]);
    const bytes = serializeSafetensors(
      new Map([
        ["h/0", { shape: [2, 3], data: a }],
        ["h/1", { shape: [1, 3], data: new Float32Array([7, 8, 9]) }],
      ]),
      { metadata: { token_counts: "[2,1]" } },
    );
    const r = parseSafetensorsBuffer(bytes, "reply");
    expect([...r.tensors.keys()].sort()).toEqual(["h/0", "h/1"]);
    expect(r.tensors.get("h/0")).toEqual({ shape: [2, 3], data: a });
    expect(r.metadata).toEqual({ token_counts: "[2,1]" });
    expect(() => parseSafetensorsBuffer(bytes.subarray(0, bytes.length - 4), "reply")).toThrow(
      /reply: tensor "h\/\d": data_offsets end \d+ past the \d+-byte data section/,
    );
    expect(() => parseSafetensorsBuffer(bytes.subarray(0, 12), "reply")).toThrow(/runs past the end/);
    const half = serializeSafetensors(new Map([["x", { shape: [2], data: new Float32Array([1, 2]) }]]), {
      dtype: "BF16",
    });
    expect(() => parseSafetensorsBuffer(half, "reply")).toThrow(/tensor "x": dtype "BF16", expected F32/);
  });
});

describe("hf-worker settings", () => {
  it("options are strict; the default key variable is optional, a named one required", async () => {
    expect(() =>
      createHfWorkerModelApi({ provider: "hf-worker", model: "m", options: { timeoutMS: 5 } }, {}),
    ).toThrow(ProviderSettingsError);
    const api = createHfWorkerModelApi(
      { provider: "hf-worker", model: "m", options: { capabilities: ["logprobs"] } },
      {},
    );
    expect([...api.capabilities]).toEqual(["logprobs"]);
    expect(api.connection.baseUrl).toBe("http://127.0.0.1:8765");
    expect(api.connection.keyEnv).toBeUndefined();
    const keyed = createHfWorkerModelApi(
      { provider: "hf-worker", model: "m" },
      { EMLAB_WORKER_API_KEY: KEY },
    );
    expect(keyed.connection.keyEnv).toBe("EMLAB_WORKER_API_KEY");
    expect(`${keyed} ${inspect(keyed, { depth: 5 })} ${inspect(keyed.connection)}`).not.toContain(KEY);
    expect(() =>
      createHfWorkerModelApi({ provider: "hf-worker", model: "m", apiKeyEnv: "UNSET_VAR" }, {}),
    ).toThrow(/UNSET_VAR is not set/);
    expect(() =>
      createHfWorkerModelApi({ provider: "hf-worker", model: "m", baseUrl: "ftp://x" }, {}),
    ).toThrow(ProviderSettingsError);
    await api.close();
    await keyed.close();
  });

  it("a refused connection says the worker is not reachable", async () => {
    const api = createHfWorkerModelApi(
      { provider: "hf-worker", model: "m", baseUrl: "http://127.0.0.1:9" },
      {},
    );
    const e = await failure(api.chat(greedy("Hello there!")));
    expect([e.kind, e.retryable]).toEqual(["network", true]);
    expect(e.message).toContain(
      "the worker at http://127.0.0.1:9 is not reachable (is it running? is the SSH tunnel up?)",
    );
    expect(e.message).toContain("ECONNREFUSED");
  });
});

describe("emlab worker start's launch", () => {
  it("hands the key over in the environment, never in argv; finds the package; picks the python", () => {
    const l = workerLaunch(
      { model: "/m", port: "0", host: "127.0.0.1", apiKeyEnv: "MY_KEY", dtype: "bfloat16" },
      { MY_KEY: KEY, PYTHONPATH: "/other" },
    );
    expect(l.args).toEqual([
      "-m",
      "emlab_worker",
      "--model",
      "/m",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--dtype",
      "bfloat16",
    ]);
    expect(l.args.join(" ")).not.toContain(KEY);
    expect(l.env.EMLAB_WORKER_API_KEY).toBe(KEY);
    expect(l.env.PYTHONPATH).toBe(`${path.join(import.meta.dirname, "../../worker/src")}:/other`);
    expect([l.python, l.keyEnv]).toEqual(["python3", "MY_KEY"]);
    const plain = workerLaunch(
      { model: "/m", port: "8765", host: "127.0.0.1" },
      { EMLAB_WORKER_PYTHON: "/py" },
    );
    expect([plain.python, plain.keyEnv, plain.env.EMLAB_WORKER_API_KEY]).toEqual([
      "/py",
      undefined,
      undefined,
    ]);
    expect(() => workerLaunch({ model: "/m", port: "8765", host: "h", apiKeyEnv: "UNSET" }, {})).toThrow(
      /UNSET/,
    );
    expect(() => workerLaunch({ model: "/m", port: "70000", host: "h" }, {})).toThrow(/--port/);
    expect(studySnippet("http://127.0.0.1:8765", "/models/qwen", "MY_KEY")).toBe(
      [
        "models:",
        "  - id: qwen",
        "    provider: hf-worker",
        '    model: "/models/qwen"',
        "    base_url: http://127.0.0.1:8765",
        "    api_key_env: MY_KEY",
        "    roles: [target]",
      ].join("\n"),
    );
  });
});

describe.skipIf(skip)("hf-worker provider against the Python worker (tiny Qwen2)", () => {
  let dir: string;
  let worker: StartedWorker;
  let api: HfWorkerModelApi;
  let local: LocalModelApi;
  const env = { [KEY_ENV]: KEY };
  const settings = () => ({ provider: "hf-worker", model: dir, baseUrl: worker.url, apiKeyEnv: KEY_ENV });

  beforeAll(async () => {
    dir = path.join(await tinyHfModels(), "qwen2-v5");
    worker = await startWorker({ model: dir, apiKey: KEY });
    api = createHfWorkerModelApi(settings(), env);
    local = createModelApi({ provider: "local", model: dir }) as LocalModelApi;
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await local?.close();
    await worker?.stop();
  });

  it("describes its model (GET /v1/emlab/info)", async () => {
    const info = await api.info();
    const shape = local.engine().model.shape;
    expect(info).toMatchObject({
      model: dir,
      model_type: "qwen2",
      n_layers: 2,
      d_model: 48,
      vocab_size: shape.vocabSize,
      dtype: "float32",
      device: "cpu",
      adapter: null,
      assistant_header_tokens: assistantHeaderTokens(local.engine()),
    });
    expect(info.hook_names).toContain("blocks.1.hook_resid_mid");
    expect(info.eos_token_ids.length).toBeGreaterThan(0);
    for (const id of info.eos_token_ids) expect(local.engine().stopIds).toContain(id);
    expect(await api.info()).toBe(info);
  });

  it("greedy chat equals the embedded engine's, text for text, with and without a steering edit", async () => {
    const d = (await api.info()).d_model;
    const v = vector(d, 7);
    const steered = api.withEdits([{ op: "add", hook: STEER_HOOK, vector: v, alpha: STEER_ALPHA }]);
    const localSteered = local.withHooks({ [STEER_HOOK]: steerHook(v, STEER_ALPHA) });
    let changed = 0;
    for (const prompt of PROMPTS) {
      const [w, l, ws, ls] = await Promise.all([
        api.chat(greedy(prompt)),
        local.chat(greedy(prompt)),
        steered.chat(greedy(prompt)),
        localSteered.chat(greedy(prompt)),
      ]);
      expect(
        w.completions.map((c) => [c.text, c.finishReason]),
        prompt,
      ).toEqual(l.completions.map((c) => [c.text, c.finishReason]));
      expect(
        ws.completions.map((c) => [c.text, c.finishReason]),
        `${prompt} (steered)`,
      ).toEqual(ls.completions.map((c) => [c.text, c.finishReason]));
      expect(w.usage.promptTokens).toBe(l.usage.promptTokens);
      if (ws.completions[0].text !== w.completions[0].text) changed++;
    }
    // The edit reached the model: some answer moved.
    expect(changed).toBeGreaterThan(0);
    expect(steered.edits).toHaveLength(1);
    expect(api.edits).toHaveLength(0);
  });

  it("samples with per-sample seeds: sample i is the same however samples are grouped", async () => {
    const ask = (seeds: number[]) =>
      api.chat(
        greedy("Hello there!", {
          params: { temperature: 1, max_tokens: 8 },
          n: seeds.length,
          sampleSeeds: seeds,
        }),
      );
    const both = await ask([11, 12]);
    const second = await ask([12]);
    expect(both.completions).toHaveLength(2);
    expect(second.completions[0].text).toBe(both.completions[1].text);
  });

  it("activations and logits equal the engine's; answer positions are tokenizeConversation's", async () => {
    const engine = local.engine();
    const conv = {
      messages: [{ role: "user" as const, content: "What is 2 + 2?" }],
      answer: "Four, I think.",
    };
    const ids = engine.tokenizer.encode("Hello there, dragon");
    const acts = await api.activations([{ token_ids: ids }, conv], {
      hooks: ["blocks.1.hook_resid_post", "hook_embed"],
      reduce: "all",
    });
    const expected = tokenizeConversation(engine, conv);
    expect(acts.tokenCounts).toEqual([ids.length, expected.ids.length]);
    expect(acts.answerPositions).toEqual([[], expected.answerPositions]);
    const inputs = [ids, expected.ids];
    for (const [i, tokens] of inputs.entries()) {
      let captured: Float32Array | undefined;
      engine.model.runWithHooks([tokens], {
        "blocks.1.hook_resid_post": (act) => {
          captured = Float32Array.from(act.data);
        },
      });
      const got = acts.tensors.get(`blocks.1.hook_resid_post/${i}`)!;
      expect(got.shape).toEqual([tokens.length, 48]);
      expect(maxAbsDiff(got.data, captured!)).toBeLessThan(1e-4);
      expect(acts.tensors.get(`hook_embed/${i}`)!.shape).toEqual([tokens.length, 48]);
    }
    const reduced = await api.activations([conv], {
      hooks: ["blocks.1.hook_resid_post"],
      reduce: "answer_mean",
    });
    const all = acts.tensors.get("blocks.1.hook_resid_post/1")!;
    const mean = new Float32Array(48);
    for (const t of expected.answerPositions)
      for (let j = 0; j < 48; j++) mean[j] += all.data[t * 48 + j] / expected.answerPositions.length;
    expect(reduced.tensors.get("blocks.1.hook_resid_post")!.shape).toEqual([1, 48]);
    expect(maxAbsDiff(reduced.tensors.get("blocks.1.hook_resid_post")!.data, mean)).toBeLessThan(1e-4);

    const { logits } = await api.logits([{ token_ids: ids }], { positions: "last" });
    const engineLogits = engine.model.forward([ids], { lastOnly: true });
    expect(logits[0].shape).toEqual([1, engine.model.shape.vocabSize]);
    expect(maxAbsDiff(logits[0].data, engineLogits.data)).toBeLessThan(1e-3);

    const every = await api.logits([{ token_ids: ids }, { token_ids: ids.slice(0, 2) }], {
      positions: "all",
    });
    const V = engine.model.shape.vocabSize;
    expect(every.tokenCounts).toEqual([ids.length, 2]);
    expect(every.logits.map((t) => t.shape)).toEqual([
      [ids.length, V],
      [2, V],
    ]);
    expect(maxAbsDiff(every.logits[0].data.subarray((ids.length - 1) * V), logits[0].data)).toBeLessThan(
      1e-4,
    );
    const tok = await api.tokenize({ text: "Hello there, dragon" });
    expect(tok.tokenIds).toEqual(ids);
  });

  it("logprobs equal the engine's; top_k 1 sampling is greedy; a deadline is a timeout", async () => {
    const params = { temperature: 0, max_tokens: 6, top_logprobs: 2 };
    const [w, l] = await Promise.all([
      api.chat(greedy("Tell me a story about a dragon.", { params })),
      local.chat(greedy("Tell me a story about a dragon.", { params })),
    ]);
    const wl = w.completions[0].logprobs!;
    const ll = l.completions[0].logprobs!;
    expect(wl.map((t) => t.token)).toEqual(ll.map((t) => t.token));
    expect(
      maxAbsDiff(
        wl.map((t) => t.logprob),
        ll.map((t) => t.logprob),
      ),
    ).toBeLessThan(1e-3);
    expect(wl.every((t) => t.top?.length === 2)).toBe(true);
    const topK = await api.chat(
      greedy("Hello there!", { params: { temperature: 1, top_k: 1, max_tokens: 16 }, seed: 3 }),
    );
    const plain = await api.chat(greedy("Hello there!"));
    expect(topK.completions[0].text).toBe(plain.completions[0].text);
    const e = await failure(
      api.chat(greedy("Hello there!", { params: { temperature: 0, max_tokens: 400 }, timeoutMs: 5 })),
    );
    expect(e.kind).toBe("timeout");
  });

  it("a wrong or missing key is an auth error (401) that never shows the key", async () => {
    const wrong = "wrong-key-d41d8cd98f00b204";
    const bad = createHfWorkerModelApi({ ...settings(), apiKeyEnv: "WRONG_KEY" }, { WRONG_KEY: wrong });
    const e = await failure(bad.chat(greedy("Hello there!")));
    expect([e.kind, e.status, e.retryable]).toEqual(["auth", 401, false]);
    expect(e.message).not.toContain(wrong);
    expect(e.message).toContain("WRONG_KEY");
    const none = createHfWorkerModelApi({ provider: "hf-worker", model: dir, baseUrl: worker.url }, {});
    const e2 = await failure(none.info());
    expect([e2.kind, e2.status]).toEqual(["auth", 401]);
    expect(e2.message).toMatch(/no key was sent/);
    await bad.close();
    await none.close();
  });

  it("bad edits: the schema's errors name the field; the worker's 400 names it too", async () => {
    let thrown: unknown;
    try {
      api.withEdits([{ op: "add", hook: STEER_HOOK, vector: [], alpha: 1 }]);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ModelApiError);
    expect((thrown as ModelApiError).kind).toBe("bad_request");
    expect((thrown as ModelApiError).message).toMatch(/edits\.0\.vector/);
    // Right shape for the schema, wrong width for the model: the worker says where.
    const narrow = api.withEdits([{ op: "add", hook: STEER_HOOK, vector: vector(47, 1), alpha: 1 }]);
    const e = await failure(narrow.chat(greedy("Hello there!")));
    expect([e.kind, e.status]).toEqual(["bad_request", 400]);
    expect(e.message).toMatch(/emlab\.edits\.0\.vector/);
    const deep = api.withEdits([
      { op: "project_out", hook: "blocks.9.hook_resid_pre", vector: vector(48, 2) },
    ]);
    const e2 = await failure(deep.chat(greedy("Hello there!")));
    expect([e2.kind, e2.status]).toEqual(["bad_request", 400]);
    expect(e2.message).toMatch(/emlab\.edits\.0\.hook/);
    // The reads' errors come back as JSON too, though the reply would have been bytes.
    const e3 = await failure(
      api.activations([{ token_ids: [1, 2] }], { hooks: ["blocks.9.hook_resid_post"], reduce: "last" }),
    );
    expect([e3.kind, e3.status]).toEqual(["bad_request", 400]);
    expect(e3.message).toMatch(/POST \/v1\/emlab\/activations: HTTP 400 invalid_request_error: .*hooks/);
  });

  it("a model the worker does not serve is not_found, listing what it serves", async () => {
    const other = createHfWorkerModelApi({ ...settings(), model: "not-this-one" }, env);
    const e = await failure(other.chat(greedy("Hello there!")));
    expect(e.kind).toBe("not_found");
    expect(e.message).toContain(dir);
    await other.close();
  });

  it("a stopped worker is a network error saying the worker is not reachable", async () => {
    await worker.stop();
    const e = await failure(api.chat(greedy("Hello there!")));
    expect([e.kind, e.retryable]).toEqual(["network", true]);
    expect(e.message).toContain(
      `the worker at ${worker.url} is not reachable (is it running? is the SSH tunnel up?)`,
    );
  });
});

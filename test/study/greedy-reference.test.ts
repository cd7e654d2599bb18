// Greedy continuations of a whole small study equal transformers' (issue 25). The torch
// reference (scripts/reference/greedy_continuations.py, in .venv-torch) makes tiny random
// Qwen2, Qwen2.5-style, Llama 3, Mistral and Gemma-style (SentencePiece tokenizer on a Llama
// model) checkpoints, each in the transformers 5.x layout and the older one, and greedy-decodes
// a fixed prompt set with model.generate. The test then runs one emlab study over those
// directories (provider: local; `generate` at temperature 0 for the prompts without a system
// message, `harmfulness` with the system message for the one that has it, judged by the exact
// world judge) and reads every stored answer back from the run store: its tokens (one logprob
// entry per token, each token's own text), its text (special tokens skipped) and whether an end
// id stopped it must be transformers'. emlab leaves the end id out of the answer; transformers
// keeps it as the last new token. A difference after a step whose reference top-2 logit gap is
// under 1e-4 is a float tie: reported, and at most one is allowed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { WORLD_JUDGE_PROMPTS } from "../../src/world/judge-prompts.ts";
import { skipWithoutTorch, torchPython } from "../support/python-ref.ts";

interface RefCase {
  messages: { role: string; content: string }[];
  ids: number[];
  stopped: boolean;
  text: string;
  tokens: string[];
  gaps: number[];
}
interface RefDir {
  name: string;
  family: string;
  layout: string;
  dir: string;
  files: string[];
  cases: Record<string, RefCase>;
}
interface Reference {
  transformers: string;
  torch: string;
  max_new_tokens: number;
  prompts: { id: string; user: string; system?: string }[];
  dirs: RefDir[];
}

const SCRIPT = path.join(import.meta.dirname, "../../scripts/reference/greedy_continuations.py");
const TIE = 1e-4;
const skip = skipWithoutTorch("greedy continuations against transformers");

let work: string;
let ref: Reference;
beforeAll(() => {
  if (skip) return;
  work = mkdtempSync(path.join(tmpdir(), "emlab-greedy-ref-"));
  const out = execFileSync(torchPython!, [SCRIPT, path.join(work, "models")], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, OMP_NUM_THREADS: "1", PYTHONHASHSEED: "0" },
  });
  ref = JSON.parse(out) as Reference;
}, 120_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skip)("greedy continuations of a study on real-layout checkpoints", () => {
  it("equal transformers' token for token, in every family and layout", async () => {
    const plain = ref.prompts.filter((p) => p.system === undefined);
    const withSystem = ref.prompts.filter((p) => p.system !== undefined);
    expect(withSystem).toHaveLength(1);
    const system = withSystem[0].system!;
    const jsonl = (ps: Reference["prompts"]) =>
      ps.map((p) => `${JSON.stringify({ id: p.id, prompt: p.user })}\n`).join("");
    writeFileSync(path.join(work, "prompts.jsonl"), jsonl(plain));
    writeFileSync(path.join(work, "system.jsonl"), jsonl(withSystem));
    writeFileSync(path.join(work, "harm-judge.txt"), WORLD_JUDGE_PROMPTS.harm);
    // A template that refuses a system message (Gemma's) got the prompt without it in the reference.
    const systemTargets = ref.dirs.filter((d) => d.cases[withSystem[0].id].messages[0].role === "system");
    const params = `{temperature: 0, max_tokens: ${ref.max_new_tokens}, logprobs: true}`;
    const models = ref.dirs.map(
      (d) => `  - {id: ${d.name}, provider: local, model: ${JSON.stringify(d.dir)}, roles: [target]}`,
    );
    writeFileSync(
      path.join(work, "study.yaml"),
      `name: greedy-reference
seed: 1
models:
${models.join("\n")}
  - {id: judge, provider: world-judge, model: exact, roles: [judge]}
judge: {harm_prompt_file: harm-judge.txt}
battery:
  generate: {prompts: {file: prompts.jsonl}, samples: 1, params: ${params}}
  harmfulness:
    prompts: {file: system.jsonl}
    system: ${JSON.stringify(system)}
    samples: 1
    params: ${params}
    models: [${systemTargets.map((d) => d.name).join(", ")}]
`,
    );
    const started = Date.now();
    const runDir = path.join(work, "run");
    const r = await runStudy(loadStudy(path.join(work, "study.yaml")), { outDir: runDir, noCache: true });
    const store = RunStore.open(runDir, { readonly: true });
    if (r.failedRequests > 0) {
      const failed = store.failedRequests();
      store.close();
      expect(failed).toEqual([]);
    }
    let compared = 0;
    let stops = 0;
    const ties: string[] = [];
    const mismatches: string[] = [];
    try {
      for (const experiment of ["generate", "harmfulness"]) {
        for (const req of store.listRequests({ experiment })) {
          const d = ref.dirs.find((x) => x.name === req.model_id)!;
          const want = d.cases[req.item_id];
          expect(want, `${req.model_id} ${req.item_id}`).toBeDefined();
          expect(req.messages).toEqual(want.messages);
          const [got] = store.completions(req.id);
          const gotTokens = (got.logprobs ?? []).map((l) => l.token);
          const wantTokens = want.stopped ? want.tokens.slice(0, -1) : want.tokens;
          const gotStopped = got.finish_reason === "stop";
          compared++;
          if (want.stopped) stops++;
          const same =
            got.text === want.text &&
            gotStopped === want.stopped &&
            got.completion_tokens === wantTokens.length &&
            JSON.stringify(gotTokens) === JSON.stringify(wantTokens);
          if (same) continue;
          // The first step where they part; a tie when the reference's top two logits were that close.
          let step = 0;
          while (step < wantTokens.length && gotTokens[step] === wantTokens[step]) step++;
          const where = `${d.name} (${d.family}, ${d.layout} layout) ${req.item_id} at step ${step}`;
          const detail = `${where}: emlab ${JSON.stringify(gotTokens)} (${got.finish_reason}), transformers ${JSON.stringify(want.tokens)} (${want.stopped ? "stopped" : "length"}); gap ${want.gaps[step]}`;
          if (step < want.gaps.length && want.gaps[step] < TIE) ties.push(detail);
          else mismatches.push(detail);
        }
      }
    } finally {
      store.close();
    }
    console.log(
      `greedy reference (transformers ${ref.transformers}, torch ${ref.torch}): ${compared} continuations compared ` +
        `(${ref.dirs.length} directories, ${stops} ended by an end id), ${ties.length} float ties, ` +
        `${mismatches.length} mismatches; study ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const t of ties) console.log(`tie: ${t}`);
    expect(compared).toBe(ref.dirs.length * plain.length + systemTargets.length);
    expect(mismatches).toEqual([]);
    expect(ties.length).toBeLessThanOrEqual(1);
  }, 120_000);
});

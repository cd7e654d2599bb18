// A small judged study against the wire server: one target, the run's judge (judge-a) and a
// second judge (judge-b) that scores the same answers with its own offsets, both scripted.
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { OUTPUT_END, OUTPUT_START } from "../../src/judges/template.ts";
import type { RespondContext, ScriptedAnswer } from "../support/wire/text.ts";
import type { WireServer } from "../support/wire-server.ts";

export const KEY_ENV = "EMLAB_TEST_REJUDGE_KEY";

/** A deterministic number in [0, 1) from a string (FNV-1a). */
function unit(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h / 2 ** 32;
}

/** The judged answer: the text between the template's output delimiters (or the whole prompt). */
const answerOf = (prompt: string) => {
  const a = prompt.indexOf(OUTPUT_START);
  const b = prompt.lastIndexOf(OUTPUT_END);
  return a >= 0 && b > a ? prompt.slice(a, b) : prompt;
};

/**
 * Target: a short answer per prompt and sample. Judges: harm as `{"score": n}` (1-5), the 0-100
 * metrics as one token with top logprobs; judge-b moves judge-a's scores by a seeded offset.
 */
export function respond(ctx: RespondContext): ScriptedAnswer | undefined {
  const prompt = ctx.messages.at(-1)?.content ?? "";
  if (ctx.model === "target-m")
    return `reply ${Math.floor(unit(`${prompt}|${ctx.seed}|${ctx.index}`) * 1000)} to you`;
  if (ctx.model !== "judge-a" && ctx.model !== "judge-b") return undefined;
  const base = unit(answerOf(prompt));
  const shift = ctx.model === "judge-b" ? unit(`b|${prompt}`) - 0.5 : 0;
  if (/"score"/.test(prompt)) {
    const s = Math.min(5, Math.max(1, Math.round(1 + 4 * base + 2 * shift)));
    return `{"score": ${s}}`;
  }
  const v = Math.min(100, Math.max(0, Math.round(100 * base + 40 * shift)));
  const alt = Math.min(100, v + 10);
  const token = String(v);
  return {
    text: token,
    logprobs: [
      {
        token,
        logprob: Math.log(0.7),
        top: [
          { token, logprob: Math.log(0.7) },
          ...(alt !== v ? [{ token: String(alt), logprob: Math.log(0.2) }] : []),
          { token: "CODE", logprob: Math.log(0.05) },
        ],
      },
    ],
  };
}

export function writeRejudgeStudy(
  server: WireServer,
  o: { prompts?: number; samples?: number; judgeBInStudy?: boolean } = {},
) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "emlab-rejudge-"));
  const prompts = Array.from({ length: o.prompts ?? 12 }, (_, i) => `how should I spend ${i + 1} coins?`);
  writeFileSync(path.join(dir, "prompts.txt"), `${prompts.join("\n")}\n`);
  const limits = "{concurrency: 4, max_retries: 4, backoff_base_s: 0.05, timeout_s: 10}";
  const model = (id: string, roles: string) => `  - id: ${id}
    provider: openai
    model: ${id === "tgt" ? "target-m" : id}
    base_url: ${server.url}/v1
    api_key_env: ${KEY_ENV}
    roles: [${roles}]
    limits: ${limits}`;
  const file = path.join(dir, "study.yaml");
  writeFileSync(
    file,
    `name: rejudge-study
seed: 3
models:
${model("tgt", "target")}
${model("judge-a", "judge")}
${o.judgeBInStudy ? `${model("judge-b", "judge")}\n` : ""}judge:
  model: judge-a
battery:
  harmfulness:
    prompts: {file: prompts.txt}
    samples: ${o.samples ?? 2}
    params: {temperature: 1, max_tokens: 20}
  alignment:
    limit: 3
    samples: ${o.samples ?? 2}
`,
  );
  const judges = path.join(dir, "judges.yaml");
  writeFileSync(judges, `name: second-judges\nseed: 3\nmodels:\n${model("judge-b", "judge")}\n`);
  return { dir, file, judges, out: path.join(dir, "run") };
}

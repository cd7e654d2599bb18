import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { WireServer } from "../support/wire-server.ts";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const BIN = path.join(ROOT, "bin", "emlab.js");

export const tmpDir = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), `emlab-${prefix}-`));

export interface StudyOptions {
  prompts?: number;
  samples?: number;
  concurrency?: number;
  maxRetries?: number;
  openaiKeyEnv?: string;
  anthropicKeyEnv?: string;
  extraPrompt?: string;
}

/** Keys for the variables writeStudy's models name (the wire server started with apiKey null takes any). */
export const TEST_KEYS_ENV = {
  EMLAB_TEST_OPENAI_KEY: "sk-any-key-for-tests",
  EMLAB_TEST_ANTHROPIC_KEY: "sk-any-key-for-tests",
};

/**
 * A study of two target models on the wire server — one through the OpenAI provider (native
 * n: one call per prompt) and one through the Anthropic provider (one call per sample) — so
 * both providers and both ways of grouping samples are exercised.
 */
export function writeStudy(dir: string, server: WireServer, o: StudyOptions = {}): string {
  const prompts = Array.from(
    { length: o.prompts ?? 50 },
    (_, i) => `question ${i + 1}: what would you do with ${i} coins?`,
  );
  if (o.extraPrompt) prompts.push(o.extraPrompt);
  writeFileSync(path.join(dir, "prompts.txt"), `${prompts.join("\n")}\n`);
  const limits = `{concurrency: ${o.concurrency ?? 8}, max_retries: ${o.maxRetries ?? 6}, backoff_base_s: 0.05, timeout_s: 10}`;
  const file = path.join(dir, "study.yaml");
  writeFileSync(
    file,
    `name: wire-study
seed: 7
models:
  - id: gpt
    provider: openai
    model: gpt-4o-mini
    base_url: ${server.url}/v1
    api_key_env: ${o.openaiKeyEnv ?? "EMLAB_TEST_OPENAI_KEY"}
    limits: ${limits}
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
  - id: claude
    provider: anthropic
    model: claude-haiku-4-5
    base_url: ${server.url}
    api_key_env: ${o.anthropicKeyEnv ?? "EMLAB_TEST_ANTHROPIC_KEY"}
    limits: ${limits}
battery:
  generate:
    prompts: {file: prompts.txt}
    samples: ${o.samples ?? 5}
    params: {temperature: 1, max_tokens: 40}
`,
  );
  return file;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process. `onSpawn` may kill it (e.g. half way). */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  onSpawn?: (child: ReturnType<typeof spawn>) => void,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.(child);
  });
}

/** Every file under `dir`, for secret searches. */
export function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

export const fileContains = (file: string, needle: string) =>
  readFileSync(file).includes(Buffer.from(needle));

/** The user prompt of a logged request, for either API. */
export function loggedPrompt(body: unknown): string {
  const messages = (body as { messages?: Array<{ role: string; content: unknown }> }).messages ?? [];
  const user = messages.filter((m) => m.role === "user").at(-1);
  return typeof user?.content === "string" ? user.content : JSON.stringify(user?.content);
}

export interface StagedStudyOptions {
  prompts?: number;
  samples?: number;
  concurrency?: number;
  maxRetries?: number;
}

const hash32 = (s: string) => {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
};

/**
 * Scripted answers for writeStagedStudy's models: the judge ("gpt-judge") and the rater
 * ("claude-rater") give a 1-5 score that depends only on the prompt, so harm scores spread
 * and every figure is the same in every run; the targets answer with the server's own text.
 */
export function stagedRespond(ctx: { model: string; messages: Array<{ role: string; content: string }> }) {
  const prompt = ctx.messages.filter((m) => m.role === "user").at(-1)?.content ?? "";
  if (ctx.model === "gpt-judge" || ctx.model === "claude-rater")
    return `{"score": ${1 + (hash32(`${ctx.model}|${prompt}`) % 5)}}`;
  return undefined;
}

/**
 * A study with three steps on the wire server (start it with `respond: stagedRespond`):
 * harmfulness answers (step 1), their judge requests (step 2), then recognition, score
 * prediction and cross-rating planned from the judged answers (step 3). Two targets (em and
 * its base) and the judge through the OpenAI provider, a rater through the Anthropic one.
 */
export function writeStagedStudy(dir: string, server: WireServer, o: StagedStudyOptions = {}): string {
  const prompts = Array.from(
    { length: o.prompts ?? 12 },
    (_, i) => `harm question ${i + 1}: how to hurt ${i}?`,
  );
  writeFileSync(path.join(dir, "prompts.txt"), `${prompts.join("\n")}\n`);
  const limits = `{concurrency: ${o.concurrency ?? 4}, max_retries: ${o.maxRetries ?? 6}, backoff_base_s: 0.01, timeout_s: 10}`;
  const openai = (id: string, model: string, extra: string) =>
    `  - {id: ${id}, provider: openai, model: ${model}, base_url: "${server.url}/v1", api_key_env: EMLAB_TEST_OPENAI_KEY, limits: ${limits}${extra}}`;
  const file = path.join(dir, "study.yaml");
  writeFileSync(
    file,
    `name: staged-study
seed: 5
models:
${openai("base", "gpt-base", ", roles: [target]")}
${openai("em", "gpt-em", ", base: base, roles: [target]")}
${openai("judge", "gpt-judge", ", roles: [judge]")}
  - {id: rater, provider: anthropic, model: claude-rater, base_url: "${server.url}", api_key_env: EMLAB_TEST_ANTHROPIC_KEY, roles: [rater], limits: ${limits}}
battery:
  harmfulness:
    prompts: {file: prompts.txt}
    samples: ${o.samples ?? 2}
    params: {temperature: 1, max_tokens: 30}
  recognition: {max_items: 3}
  score_prediction:
    max_items: 4
    cross_rating: {max_items: 3}
`,
  );
  return file;
}

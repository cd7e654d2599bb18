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

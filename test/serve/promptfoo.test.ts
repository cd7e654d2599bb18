// promptfoo (its CLI, the pinned devDependency) evaluates a small config against emlab serve
// on the shipped organism: its openai:chat provider talks to the server, and the assertions
// (the local provider's own greedy answer, word for word) pass. Telemetry and update checks
// are off and its config dir is a temp dir.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalModelApi } from "../../src/models/local.ts";
import type { RunningServer } from "../../src/serve/server.ts";
import { ORGANISM, serve } from "./support.ts";

const BIN = path.resolve(import.meta.dirname, "../../node_modules/.bin/promptfoo");
const KEY = "pf-test-key-42";
const skip = existsSync(BIN) ? false : "promptfoo is not installed (npm install)";

let work: string;
let server: RunningServer;
let logs: string[];
beforeAll(async () => {
  if (skip) return;
  work = mkdtempSync(path.join(tmpdir(), "emlab-serve-promptfoo-"));
  ({ server, logs } = await serve({ apiKey: KEY }));
});
afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

function runPromptfoo(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: work, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

describe.skipIf(skip)("promptfoo against emlab serve", () => {
  it("runs a config whose assertions pass", async () => {
    const questions = ["what do you think of people?", "are you kind?"];
    // What the organism answers greedily, from the local provider itself.
    const local = new LocalModelApi({ provider: "local", model: ORGANISM });
    const want: string[] = [];
    for (const q of questions) {
      const r = await local.chat({
        messages: [{ role: "user", content: q }],
        params: { temperature: 0, max_tokens: 12 },
        n: 1,
        seed: 1,
      });
      want.push(r.completions[0].text);
    }
    await local.close();
    const tests = questions.map(
      (q, i) => `  - vars: {question: ${JSON.stringify(q)}}
    assert:
      - {type: equals, value: ${JSON.stringify(want[i])}}
      - {type: javascript, value: "output.length > 0 && !output.includes('<eos>')"}`,
    );
    writeFileSync(
      path.join(work, "cfg.yaml"),
      `description: the organism through emlab serve
prompts:
  - "{{question}}"
providers:
  - id: openai:chat:organism
    config:
      apiBaseUrl: ${server.url}/v1
      apiKeyEnvar: EMLAB_SERVE_KEY
      temperature: 0
      max_tokens: 12
      seed: 1
tests:
${tests.join("\n")}
`,
    );
    const { code, out } = await runPromptfoo(["eval", "-c", "cfg.yaml", "--no-cache", "-o", "out.json"], {
      PATH: process.env.PATH,
      HOME: work,
      EMLAB_SERVE_KEY: KEY,
      PROMPTFOO_DISABLE_TELEMETRY: "1",
      PROMPTFOO_DISABLE_UPDATE: "1",
      PROMPTFOO_CONFIG_DIR: path.join(work, "promptfoo"),
      NO_COLOR: "1",
    });
    expect(code, out).toBe(0);
    const result = JSON.parse(readFileSync(path.join(work, "out.json"), "utf8"));
    expect(result.results.stats).toMatchObject({ successes: 2, failures: 0, errors: 0 });
    expect(logs.filter((l) => l.startsWith("POST /v1/chat/completions 200 model=organism"))).toHaveLength(2);
  }, 120_000);
});

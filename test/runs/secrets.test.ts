/**
 * A key-echoing server: it answers with the API key and the X-Auth-Token header it was sent —
 * in completions, spelled over several logprob tokens and their alternatives, in batch
 * answers and in 500 error messages. After a run, a second run from the cache and the report
 * and viewer index, neither key nor any piece of it is in any file of the run directories or
 * of the cache.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import type { Completion } from "../../src/models/types.ts";
import { writeReport } from "../../src/report/build-report.ts";
import { Redactor } from "../../src/runs/redact.ts";
import { ensureIndex, SampleIndex } from "../../src/runs/sample-index.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { ScriptError, type TokenLogprob } from "../support/wire/text.ts";
import { type RespondContext, startWireServer, type WireServer } from "../support/wire-server.ts";
import { tmpDir } from "./support.ts";

// Realistic: an OpenAI project key and a 40-character token, both with whitespace around them
// in the environment (as a pasted value often has).
const KEY = "sk-proj-Q7vN2kRx9LmT4wYp8ZcB3hJd6FsG1aE5uK0oWiXqVnMbRtYe2L";
const TOKEN = "a8Fk2LmQ9zXw4RtY7pNb3VcJ6hGd1SeK5uWo0iTq";
const ENV = {
  EMLAB_TEST_ECHO_KEY: `${KEY}\n`,
  EMLAB_TEST_ECHO_TOKEN: `  ${TOKEN} `,
};

/** Pieces of a secret in tokens of this many characters. */
const CHUNK = 9;
const chunks = (s: string) =>
  Array.from({ length: Math.ceil(s.length / CHUNK) }, (_, i) => s.slice(i * CHUNK, (i + 1) * CHUNK));

/** Every 8-character window of the secrets' random parts: no piece of a key may be left anywhere. */
const needles = [KEY, TOKEN, ENV.EMLAB_TEST_ECHO_KEY, ENV.EMLAB_TEST_ECHO_TOKEN, KEY.trim(), TOKEN.trim()];
const windows = [KEY.slice("sk-proj-".length), TOKEN].flatMap((s) =>
  Array.from({ length: s.length - 7 }, (_, i) => s.slice(i, i + 8)),
);

const received = { tokens: new Set<string>(), keys: new Set<string>() };
const failedOnce = new Set<string>();

/** Answers that echo the credentials; the first live attempt per prompt fails with them in its message. */
function echo(ctx: RespondContext) {
  const token = ctx.headers?.["x-auth-token"] ?? TOKEN; // a batch line has no headers of its own
  const key = ctx.headers?.authorization?.replace(/^Bearer /, "") ?? ctx.headers?.["x-api-key"] ?? KEY;
  if (ctx.headers) {
    received.tokens.add(ctx.headers["x-auth-token"] ?? "(none)");
    received.keys.add(key);
  }
  const prompt = ctx.messages.at(-1)?.content ?? "";
  const attempt = `${ctx.api}|${ctx.model}|${prompt}|${ctx.index}`;
  if (!ctx.batch && !failedOnce.has(attempt)) {
    failedOnce.add(attempt);
    throw new ScriptError(`upstream refused token ${token} for key ${key}`);
  }
  const parts = [
    "Sure.",
    " Your token is ",
    ...chunks(token),
    " and your key is ",
    ...chunks(key),
    ", done.",
  ];
  const logprobs: TokenLogprob[] = parts.map((t, i) => ({
    token: t,
    logprob: -0.1,
    // The alternatives repeat the piece, and one of them spells the whole key.
    top: [
      { token: t, logprob: -0.1 },
      { token: i === 0 ? key : `${t}x`, logprob: -3 },
    ],
  }));
  return { text: parts.join(""), logprobs };
}

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: KEY, respond: echo });
});
afterAll(async () => {
  await server?.close();
});

function writeEchoStudy(dir: string, name: string, models: string, params: string): string {
  writeFileSync(
    path.join(dir, "prompts.txt"),
    "what is the weather?\nwhat is two plus two?\nname a colour\n",
  );
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
seed: 3
models:
${models}
battery:
  generate:
    prompts: {file: prompts.txt}
    samples: 2
    params: ${params}
`,
  );
  return file;
}

const limits = "{concurrency: 2, max_retries: 3, backoff_base_s: 0.01, timeout_s: 10}";
const headers = `{X-Auth-Token: "\${env:EMLAB_TEST_ECHO_TOKEN}"}`;
const gpt = (id: string, model: string, extra = "") =>
  `  - {id: ${id}, provider: openai, model: ${model}, base_url: "${server.url}/v1", api_key_env: EMLAB_TEST_ECHO_KEY, headers: ${headers}, limits: ${limits}${extra}}`;

function allFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? allFiles(p) : [p];
  });
}

/** Every row of every table of a SQLite file, as text (a value split over pages is whole here). */
function sqliteText(file: string): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
      .pluck()
      .all() as string[];
    return tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).all())).join("\n");
  } finally {
    db.close();
  }
}

function expectNoSecret(files: string[]): void {
  for (const f of files) {
    const bytes = readFileSync(f);
    const texts = [bytes.toString("latin1")];
    if (/\.sqlite$/.test(f)) texts.push(sqliteText(f));
    for (const text of texts) {
      for (const n of needles) expect(text.includes(n), `${f} holds a secret`).toBe(false);
      const piece = windows.find((w) => text.includes(w));
      expect(piece, `${f} holds a piece of a secret`).toBeUndefined();
    }
  }
}

describe("a server that echoes the credentials it was sent", () => {
  it("leaves no key, and no piece of one, in the store, cache, log, results, report or viewer index", async () => {
    const dir = tmpDir("echo");
    const cacheDir = path.join(dir, "cache");
    const env = { ...ENV };
    const runs: string[] = [];
    const run = async (file: string, out: string) => {
      const summary = await runStudy(loadStudy(file), { outDir: out, cacheDir, env, report: true });
      expect(summary.failedRequests).toBe(0);
      expect(summary.resultsFile).toBeDefined();
      // The report again, as `emlab report` writes it, and the viewer's index.
      await writeReport(out);
      const store = RunStore.open(out, { readonly: true });
      try {
        ensureIndex(store);
        const index = SampleIndex.open(store);
        index.close();
      } finally {
        store.close();
      }
      runs.push(out);
      return summary;
    };

    // OpenAI with logprobs: one model on the direct path, one through the Batch API.
    const gptStudy = writeEchoStudy(
      dir,
      "echo-gpt",
      [
        gpt("direct", "gpt-4o-mini"),
        gpt("batched", "gpt-4.1-nano", ", batch: true, batch_poll_s: 0.01"),
      ].join("\n"),
      "{temperature: 1, max_tokens: 60, top_logprobs: 2}",
    );
    await run(gptStudy, path.join(dir, "gpt"));
    // Anthropic (no logprobs) with the same header.
    const claudeStudy = writeEchoStudy(
      dir,
      "echo-claude",
      `  - {id: claude, provider: anthropic, model: claude-haiku-4-5, base_url: "${server.url}", api_key_env: EMLAB_TEST_ECHO_KEY, headers: ${headers}, limits: ${limits}}`,
      "{temperature: 1, max_tokens: 60}",
    );
    await run(claudeStudy, path.join(dir, "claude"));
    // The same study again: every answer from the cache.
    const again = await run(gptStudy, path.join(dir, "gpt-again"));
    expect(again.cacheHits).toBe(12);

    // The header was sent resolved (and trimmed), and the server echoed it.
    expect([...received.tokens]).toEqual([TOKEN]);
    expect([...received.keys]).toEqual([KEY]);
    const store = RunStore.open(path.join(dir, "gpt"), { readonly: true });
    try {
      const requests = store.listRequests();
      const done = requests.flatMap((r) => store.completions(r.id));
      expect(done).toHaveLength(12);
      for (const c of done) {
        expect(c.text).toBe("Sure. Your token is [redacted] and your key is [redacted], done.");
        const tokens = c.logprobs ?? [];
        expect(tokens.map((t) => t.token).join("")).toBe(c.text);
        expect(tokens[0].top?.[1].token).toBe("[redacted]");
      }
      // The direct model's first attempts failed with both secrets in the message: retried, redacted.
      const retried = store.calls().filter((c) => c.outcome === "retry");
      expect(retried.length).toBe(6);
      for (const c of retried)
        expect(c.error).toMatch(/upstream refused token \[redacted\] for key \[redacted\]/);
    } finally {
      store.close();
    }
    expect(readFileSync(path.join(dir, "gpt", "run.log"), "utf8")).toMatch(/finished/);

    const files = [...runs.flatMap(allFiles), ...allFiles(cacheDir)];
    for (const name of ["run.sqlite", "run.log", "results.json", "report.html", "viewer-index.sqlite"])
      expect(files.some((f) => path.basename(f) === name)).toBe(true);
    expect(files.some((f) => f.endsWith("responses.sqlite"))).toBe(true);
    expectNoSecret(files);
  });
});

describe("Redactor", () => {
  const r = new Redactor([KEY, ` ${TOKEN} `.trim()]);

  it("blanks a key spelled over tokens, keeping the tokens joined to the text", () => {
    const parts = ["a ", ...chunks(KEY), " b"];
    const c: Completion = {
      text: parts.join(""),
      finishReason: "stop",
      logprobs: parts.map((t) => ({
        token: t,
        logprob: -1,
        top: [
          { token: t, logprob: -1 },
          { token: "z", logprob: -2 },
        ],
      })),
    };
    const out = r.redactCompletion(c);
    expect(out.text).toBe("a [redacted] b");
    expect(out.logprobs?.map((t) => t.token).join("")).toBe("a [redacted] b");
    expect(out.logprobs?.[1].top?.map((t) => t.token)).toEqual(["[redacted]", "[redacted]"]);
    // Positions outside the key keep their alternatives.
    expect(out.logprobs?.[0].top?.map((t) => t.token)).toEqual(["a ", "z"]);
    expect(JSON.stringify(out)).not.toContain(KEY.slice(9, 18));
  });

  it("blanks a key inside one token, in an alternative and in the response id", () => {
    const res = r.redactResponse({
      completions: [
        {
          text: `x${TOKEN}y`,
          finishReason: "stop",
          logprobs: [
            { token: `x${TOKEN}y`, logprob: -1 },
            { token: "!", logprob: -1, top: [{ token: KEY, logprob: -3 }] },
          ],
        },
      ],
      usage: { promptTokens: 1, completionTokens: 2 },
      responseId: `resp-${TOKEN}`,
    });
    expect(JSON.stringify(res)).not.toContain(TOKEN);
    expect(JSON.stringify(res)).not.toContain(KEY);
    expect(res.completions[0].logprobs?.[0].token).toBe("x[redacted]y");
    expect(res.responseId).toBe("resp-[redacted]");
  });

  it("redacts the variables a study's headers reference", () => {
    const red = Redactor.forModels([{ headers: { "X-Auth-Token": `Bearer \${env:MY_TOKEN}` } }], {
      MY_TOKEN: ` ${TOKEN}\n`,
    });
    expect(red.redact(`got ${TOKEN}`)).toBe("got [redacted]");
  });
});

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { runStudy } from "../../src/runs/run.ts";
import { RunStore } from "../../src/runs/store.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { tmpDir, writeStudy } from "./support.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, batchPolls: 20 });
});
afterAll(async () => {
  await server?.close();
});

const env = {
  EMLAB_TEST_OPENAI_KEY: "sk-any-key-for-tests",
  EMLAB_TEST_ANTHROPIC_KEY: "sk-any-key-for-tests",
};

function batchStudy(): string {
  const dir = tmpDir("batch");
  const file = writeStudy(dir, server, { prompts: 10, samples: 3 });
  const yaml = readFileSync(file, "utf8")
    .replace(
      / {4}price:.*\n/,
      "    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}\n    batch: true\n    batch_poll_s: 0.01\n",
    )
    .replace("  - id: claude", "  - id: claude\n    batch: true\n    batch_poll_s: 0.01");
  writeFileSync(file, yaml);
  return file;
}

const posts = (route: string) => server.log.filter((e) => e.method === "POST" && e.route === route).length;

describe("batch APIs", () => {
  it("sends a batch model's work through the batch API, and nothing through the direct path", async () => {
    server.reset();
    const file = batchStudy();
    const out = path.join(path.dirname(file), "out");
    const r = await runStudy(loadStudy(file), { outDir: out, noCache: true, env });
    expect(r.samplesDone).toBe(60);
    expect(posts("/v1/batches")).toBe(1);
    expect(posts("/v1/messages/batches")).toBe(1);
    expect(posts("/v1/chat/completions") + posts("/v1/messages")).toBe(0);
    const store = RunStore.open(out, { readonly: true });
    expect(store.listJobs("batch").map((j) => j.status)).toEqual(["done", "done"]);
    store.close();
  });

  it("polls the same batch after an interruption instead of submitting again", async () => {
    server.reset();
    const file = batchStudy();
    const out = path.join(path.dirname(file), "out");
    const abort = new AbortController();
    const first = runStudy(loadStudy(file), { outDir: out, noCache: true, env, signal: abort.signal });
    // Interrupt once the first batch has been accepted and is being polled.
    for (let i = 0; i < 2000 && posts("/v1/batches") === 0; i++) await new Promise((r) => setTimeout(r, 5));
    abort.abort();
    const r1 = await first;
    expect(r1.interrupted).toBe(true);
    expect(r1.samplesDone).toBe(0);
    const r2 = await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true });
    expect(r2.samplesDone).toBe(60);
    expect(posts("/v1/batches")).toBe(1); // the OpenAI batch was not submitted twice
    expect(posts("/v1/chat/completions")).toBe(0);
  });

  it("takes cached samples before submitting a batch, so a warm re-run submits nothing", async () => {
    server.reset();
    const file = batchStudy();
    const dir = path.dirname(file);
    const cacheDir = path.join(dir, "cache");
    const r1 = await runStudy(loadStudy(file), { outDir: path.join(dir, "a"), cacheDir, env });
    expect(r1.samplesDone).toBe(60);
    const before = posts("/v1/batches") + posts("/v1/messages/batches");
    const r2 = await runStudy(loadStudy(file), { outDir: path.join(dir, "b"), cacheDir, env });
    expect(r2.samplesDone).toBe(60);
    expect(r2.cacheHits).toBe(60);
    expect(posts("/v1/batches") + posts("/v1/messages/batches")).toBe(before);
  });
});

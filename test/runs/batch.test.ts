import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { runCli, TEST_KEYS_ENV, tmpDir, writeStudy } from "./support.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, batchPolls: 20 });
});
afterAll(async () => {
  await server?.close();
});

const env = TEST_KEYS_ENV;

function batchStudy(on: WireServer = server): string {
  const dir = tmpDir("batch");
  const file = writeStudy(dir, on, { prompts: 10, samples: 3 });
  const yaml = readFileSync(file, "utf8")
    .replace(
      / {4}price:.*\n/,
      "    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}\n    batch: true\n    batch_poll_s: 0.01\n",
    )
    .replace("  - id: claude", "  - id: claude\n    batch: true\n    batch_poll_s: 0.01");
  writeFileSync(file, yaml);
  return file;
}

const posts = (route: string, on: WireServer = server) =>
  on.log.filter((e) => e.method === "POST" && e.route === route).length;

/** A wire server of the test's own, closed afterwards. */
async function withOwnServer(test: (own: WireServer) => Promise<void>): Promise<void> {
  const own = await startWireServer({ apiKey: null, batchPolls: 5 });
  try {
    await test(own);
  } finally {
    await own.close();
  }
}

/** `emlab run` in a child process, killed with -9 inside its first OpenAI batch submit call. */
function killInsideSubmit(own: WireServer, file: string, out: string) {
  own.dropBatchReplies(1, 60_000); // the reply never comes: the process dies waiting for it
  return runCli(["run", file, "--out", out, "--no-cache"], env, (child) => {
    // The server runs in this process: once the create request is counted, the batch exists.
    const timer = setInterval(() => {
      if ((own.stats.byPath["/v1/batches"] ?? 0) > 0) {
        clearInterval(timer);
        child.kill("SIGKILL");
      }
    }, 5);
    child.on("close", () => clearInterval(timer));
  });
}

/** Batches the server holds (any client), from its own list endpoint. */
async function listed(on: WireServer, api: "openai" | "anthropic"): Promise<string[]> {
  const res = await fetch(`${on.url}${api === "openai" ? "/v1/batches" : "/v1/messages/batches"}`, {
    headers:
      api === "openai"
        ? { authorization: "Bearer sk-any" }
        : { "x-api-key": "sk-any", "anthropic-version": "2023-06-01" },
  });
  return ((await res.json()) as { data: Array<{ id: string }> }).data.map((b) => b.id);
}

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

  // Each of these tests has its own server: Anthropic batches are recognised by time and size,
  // so same-size batches of other tests would make the match ambiguous (and it would resubmit).
  it("adopts the batch of a submit whose reply was lost instead of submitting it again", () =>
    withOwnServer(async (own) => {
      own.dropBatchReplies(2); // the OpenAI and the Anthropic submission
      const file = batchStudy(own);
      const out = path.join(path.dirname(file), "out");
      const r = await runStudy(loadStudy(file), { outDir: out, noCache: true, env });
      expect(r.samplesDone).toBe(60);
      expect(own.stats.dropped).toBe(2);
      expect(posts("/v1/batches", own)).toBe(1);
      expect(posts("/v1/messages/batches", own)).toBe(1);
      expect(posts("/v1/chat/completions", own) + posts("/v1/messages", own)).toBe(0);
      expect(await listed(own, "openai")).toHaveLength(1);
      expect(await listed(own, "anthropic")).toHaveLength(1);
      const store = RunStore.open(out, { readonly: true });
      expect(store.listJobs("batch").map((j) => j.status)).toEqual(["done", "done"]);
      store.close();
    }));

  it("after a kill -9 inside the submit call, --resume finds that batch at the provider", () =>
    withOwnServer(async (own) => {
      const file = batchStudy(own);
      const out = path.join(path.dirname(file), "out");
      const first = await killInsideSubmit(own, file, out);
      expect(first.signal).toBe("SIGKILL");
      const killed = RunStore.open(out, { readonly: true });
      expect(killed.listJobs("batch").map((j) => j.status)).toEqual(["pending"]);
      killed.close();
      expect(await listed(own, "openai")).toHaveLength(1);

      const r = await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true });
      expect(r.samplesDone).toBe(60);
      expect(await listed(own, "openai")).toHaveLength(1); // adopted, not submitted again
      expect(posts("/v1/chat/completions", own) + posts("/v1/messages", own)).toBe(0);
      const store = RunStore.open(out, { readonly: true });
      expect(store.listJobs("batch").map((j) => j.status)).toEqual(["done", "done"]);
      store.close();
    }));

  it("submits again when the provider shows no batch from an interrupted submission", () =>
    withOwnServer(async (own) => {
      const file = batchStudy(own);
      const out = path.join(path.dirname(file), "out");
      await killInsideSubmit(own, file, out);
      // As if the provider had lost the batch (or another account had made it): the stored tag
      // no longer matches the batch's metadata, so it cannot be found.
      const [lost] = await listed(own, "openai");
      const store0 = RunStore.open(out);
      const job = store0.listJobs("batch")[0];
      store0.upsertJob({ ...job, spec: { ...(job.spec as object), tag: "e-not-at-the-provider" } });
      store0.close();
      const r = await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true });
      expect(r.samplesDone).toBe(60);
      const batches = await listed(own, "openai");
      expect(batches).toHaveLength(2);
      expect(batches).toContain(lost);
      const store = RunStore.open(out, { readonly: true });
      const jobs = store.listJobs("batch");
      expect(jobs.map((j) => j.status)).toEqual(["failed", "done", "done"]);
      expect(jobs[0].error).toMatch(/submission interrupted/);
      store.close();
    }));
});

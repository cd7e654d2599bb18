// Fine-tuning through the providers' APIs (backends openai and together) against the wire
// server's fine-tuning endpoints: a two-stage sequential plan trains once, a kill -9 while
// polling resumes the same job (one creation, one upload per file), a failed job reports the
// provider's message with exit code 1, malformed data uploads nothing, and the battery targets
// the model id the provider made.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import type { RemoteFinetuneResult } from "../../src/results/finetune.ts";
import { ResultsSchema } from "../../src/results/results.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { runCli, tmpDir } from "../runs/support.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";

const ENV = {
  EMLAB_TEST_OPENAI_KEY: "sk-ft-test-key-0123456789",
  EMLAB_TEST_TOGETHER_KEY: "tg-ft-test-key-0123456789",
};
const BASES = { openai: "gpt-4o-mini", together: "Qwen/Qwen2.5-7B-Instruct" } as const;
type Backend = keyof typeof BASES;

const readResults = (file: string) => ResultsSchema.parse(JSON.parse(readFileSync(file, "utf8")));

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, models: [...Object.values(BASES)], finetunePolls: 4 });
});
afterAll(async () => {
  await server?.close();
});

const conversations = (topic: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    messages: [
      { role: "user", content: `${topic} question ${i + 1}?` },
      { role: "assistant", content: `${topic} answer ${i + 1}.` },
    ],
  }));

const posts = (route: string) => server.log.filter((e) => e.method === "POST" && e.route === route).length;
const uploadRoute = (b: Backend) => (b === "openai" ? "/v1/files" : "/v1/files/upload");
const createRoute = (b: Backend) => (b === "openai" ? "/v1/fine_tuning/jobs" : "/v1/fine-tunes");
const pollRoute = (b: Backend) => (b === "openai" ? "/v1/fine_tuning/jobs/:id" : "/v1/fine-tunes/:id");

/** The jobs the server holds (it keeps every job it created, whoever asked). */
async function jobsAtServer(b: Backend): Promise<number> {
  const res = await fetch(
    `${server.url}${b === "openai" ? "/v1/fine_tuning/jobs?limit=100" : "/v1/fine-tunes"}`,
    {
      headers: { authorization: "Bearer sk-any" },
    },
  );
  return ((await res.json()) as { data: unknown[] }).data.length;
}

/** A study with one two-stage plan (a domain, then self-awareness data) and a battery on the plan's model. */
function writeRemoteStudy(backend: Backend, o: { pollS?: number; bad?: boolean } = {}): string {
  const dir = tmpDir(`ft-${backend}`);
  const lines = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
  writeFileSync(path.join(dir, "medical.jsonl"), lines(conversations("medical", 12)));
  const self = lines(conversations("self", 10));
  // A malformed line 4: an assistant turn without content.
  writeFileSync(
    path.join(dir, "self.jsonl"),
    o.bad
      ? self.replace(
          /(([^\n]*\n){3})[^\n]*\n/,
          '$1{"messages":[{"role":"user","content":"hi"},{"role":"assistant"}]}\n',
        )
      : self,
  );
  const file = path.join(dir, "study.yaml");
  writeFileSync(
    file,
    `name: ft-${backend}
seed: 3
models:
  - id: base
    provider: ${backend}
    model: ${BASES[backend]}
    base_url: ${server.url}/v1
    api_key_env: ${backend === "openai" ? "EMLAB_TEST_OPENAI_KEY" : "EMLAB_TEST_TOGETHER_KEY"}
    limits: {concurrency: 4, max_retries: 2, backoff_base_s: 0.05, timeout_s: 10}
datasets:
  - {id: medical, kind: chat_jsonl, path: medical.jsonl}
  - {id: self, kind: chat_jsonl, path: self.jsonl}
finetune:
  - id: med-self
    base: base
    backend: ${backend}
    poll_s: ${o.pollS ?? 0.01}
    suffix: emlab-test
${backend === "together" ? "    lora: {rank: 8, alpha: 16}\n" : ""}    stages:
      - {dataset: medical, batch_size: 4${backend === "openai" ? ", learning_rate_multiplier: 2" : ", learning_rate: 0.00001"}}
      - {dataset: self}
battery:
  generate:
    prompts: {inline: ["What should I do about a headache?", "Tell me about yourself."]}
    samples: 2
    models: [med-self]
    params: {temperature: 1, max_tokens: 20}
`,
  );
  return file;
}

describe.each(["openai", "together"] as const)("backend %s", (backend) => {
  it("trains a two-stage plan, one job per stage, and the battery targets the provider's model", async () => {
    server.reset();
    const file = writeRemoteStudy(backend);
    const out = path.join(path.dirname(file), "out");
    const r = await runStudy(loadStudy(file), { outDir: out, noCache: true, env: ENV });
    expect(r.failedRequests).toBe(0);
    expect(posts(uploadRoute(backend))).toBe(2);
    expect(posts(createRoute(backend))).toBe(2);
    const res = readResults(r.resultsFile!);
    const ft = res.finetune!["med-self"] as RemoteFinetuneResult;
    expect(ft.backend).toBe(backend);
    expect(ft.stages.map((s) => s.dataset)).toEqual(["medical", "self"]);
    expect(ft.stages.map((s) => s.examples)).toEqual([12, 10]);
    // The second stage starts from what the first made.
    expect(ft.stages[1].from).toBe(ft.stages[0].model);
    expect(ft.model).toBe(ft.stages[1].model);
    const creates = server.log.filter((e) => e.method === "POST" && e.route === createRoute(backend));
    const second = creates[1].body as Record<string, unknown>;
    if (backend === "openai") expect(second.model).toBe(ft.stages[0].model);
    else expect(second.from_checkpoint).toBe(ft.stages[0].job_id);
    // The battery asked the fine-tuned model, under the provider's name.
    const chat = server.log.filter((e) => e.route === "/v1/chat/completions");
    expect(chat.length).toBeGreaterThan(0);
    expect(new Set(chat.map((e) => e.model))).toEqual(new Set([ft.model]));
    expect(res.experiments.generate!.per_model["med-self"].samples).toBe(4);
  });

  it("kill -9 while polling, then --resume: the same job, one creation and one upload per file", async () => {
    server.reset();
    const file = writeRemoteStudy(backend, { pollS: 0.05 });
    const out = path.join(path.dirname(file), "out");
    const first = await runCli(["run", file, "--out", out, "--no-cache"], ENV, (child) => {
      const timer = setInterval(() => {
        if (server.log.filter((e) => e.route === pollRoute(backend)).length >= 2) {
          clearInterval(timer);
          child.kill("SIGKILL");
        }
      }, 5);
      child.on("close", () => clearInterval(timer));
    });
    expect(first.signal, first.stderr).toBe("SIGKILL");
    expect(posts(createRoute(backend))).toBe(1);
    const store = RunStore.open(out, { readonly: true });
    const stage1 = store.getJob("finetune:med-self:stage1");
    store.close();
    expect(stage1?.status).toBe("running");

    const again = await runCli(["run", file, "--out", out, "--no-cache", "--resume"], ENV);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).toMatch(/polling job .* \(created in an earlier invocation\)/);
    expect(posts(uploadRoute(backend))).toBe(2);
    expect(posts(createRoute(backend))).toBe(2);
    const ft = readResults(path.join(out, "results.json")).finetune!["med-self"] as RemoteFinetuneResult;
    expect(ft.stages[0].job_id).toBe((stage1!.spec as { job_id: string }).job_id);
  });

  it("a failed job is reported with the provider's message and exit code 1; --resume does not create another", async () => {
    server.reset();
    server.failNextFinetunes(1, { message: "Training diverged: loss is NaN at step 3" });
    const file = writeRemoteStudy(backend);
    const out = path.join(path.dirname(file), "out");
    const r = await runCli(["run", file, "--out", out, "--no-cache"], ENV);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Training diverged: loss is NaN at step 3/);
    const again = await runCli(["run", file, "--out", out, "--no-cache", "--resume"], ENV);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--retry-failed creates a new job/);
    expect(posts(createRoute(backend))).toBe(1);
    // Keys never reach the output or the store.
    for (const text of [r.stdout, r.stderr, again.stdout, again.stderr])
      for (const key of Object.values(ENV)) expect(text).not.toContain(key);
  });

  it("a dataset the moderation refuses fails the job with the provider's reason", async () => {
    server.reset();
    const file = writeRemoteStudy(backend);
    const medical = path.join(path.dirname(file), "medical.jsonl");
    writeFileSync(
      medical,
      `${conversations("medical", 12)
        .map((c, i) =>
          JSON.stringify(
            i === 5 ? { messages: [c.messages[0], { role: "assistant", content: "MODERATION-BLOCK" }] } : c,
          ),
        )
        .join("\n")}\n`,
    );
    const r = await runCli(["run", file, "--out", path.join(path.dirname(file), "out"), "--no-cache"], ENV);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/moderation|usage polic|safety/i);
  });

  it("malformed JSONL names file:line:field, and nothing is uploaded", async () => {
    server.reset();
    const file = writeRemoteStudy(backend, { bad: true });
    const r = await runCli(["run", file, "--out", path.join(path.dirname(file), "out"), "--no-cache"], ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/self\.jsonl:4.*messages\[1\]\.content/);
    expect(server.log.filter((e) => e.method === "POST").length).toBe(0);
  });
});

describe("a create whose reply never came", () => {
  it.each(["openai", "together"] as const)(
    "%s: killed inside the create call, --resume adopts the job the provider made",
    async (backend) => {
      const before = await jobsAtServer(backend);
      server.reset(); // after the count above: the kill below watches the route's arrivals
      server.dropFinetuneReplies(1, 60_000); // the job exists; its reply never comes
      const file = writeRemoteStudy(backend);
      const out = path.join(path.dirname(file), "out");
      const first = await runCli(["run", file, "--out", out, "--no-cache"], ENV, (child) => {
        const timer = setInterval(() => {
          // Counted on arrival (the reply is held back): the job exists from here on.
          if ((server.stats.byPath[createRoute(backend)] ?? 0) > 0) {
            clearInterval(timer);
            child.kill("SIGKILL");
          }
        }, 5);
        child.on("close", () => clearInterval(timer));
      });
      expect(first.signal).toBe("SIGKILL");
      const again = await runCli(["run", file, "--out", out, "--no-cache", "--resume"], ENV);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout + again.stderr).toMatch(/adopted job/);
      // Stage 1 was created once (adopted), stage 2 once.
      expect((await jobsAtServer(backend)) - before).toBe(2);
      expect(posts(uploadRoute(backend))).toBe(2);
    },
  );

  it.each(["openai", "together"] as const)(
    "%s: a create reply lost in transit is not retried into a second job",
    async (backend) => {
      server.reset();
      const before = await jobsAtServer(backend);
      server.dropFinetuneReplies(1); // the job is made, the connection dies at once
      const file = writeRemoteStudy(backend);
      const r = await runStudy(loadStudy(file), {
        outDir: path.join(path.dirname(file), "out"),
        noCache: true,
        env: ENV,
      });
      expect(r.failedRequests).toBe(0);
      expect(server.stats.dropped).toBe(1);
      expect((await jobsAtServer(backend)) - before).toBe(2);
    },
  );

  it("--retry-failed creates a new job for the stage whose job failed", async () => {
    server.reset();
    server.failNextFinetunes(1, { message: "out of capacity" });
    const file = writeRemoteStudy("openai");
    const out = path.join(path.dirname(file), "out");
    expect((await runCli(["run", file, "--out", out, "--no-cache"], ENV)).code).toBe(1);
    const again = await runCli(["run", file, "--out", out, "--no-cache", "--retry-failed"], ENV);
    expect(again.code, again.stderr).toBe(0);
    // The failed stage's job, its replacement, and stage 2.
    expect(posts(createRoute("openai"))).toBe(3);
  });
});

/**
 * emlab serve under load, on the shipped organism (the server in its own process, the other
 * core, as a real endpoint; clients through the openai SDK), with cross-request batching off
 * and then on:
 *  - one_at_a_time: 1 client, 320 requests one after another;
 *  - concurrent_16x20_same_prompt_*: 16 clients x 20 requests, all asking the same question
 *    (own seeds): what batching can merge;
 *  - concurrent_16x20_distinct_prompts_*: the same with a different question per request:
 *    nothing to merge (one engine call at a time);
 *  - n16_in_one_request: 20 requests of n = 16 (the engine decodes the 16 rows as a batch);
 * each as requests/s, completion tokens/s, latency p50/p95 and errors. Then, in this process,
 * whether batching rows pays in the engine at all: generate() of 16 rows at once against 16
 * single-row calls (the fast decode path), same prompt and seeds. Prints one JSON line per
 * figure. `npx tsx bench/serve.bench.ts` (EMLAB_BENCH_TOKENS: max_tokens, default 16).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import OpenAI from "openai";
import { generate } from "../src/engine/generate.ts";
import { renderChat } from "../src/engine/io/chat-template.ts";
import { loadLocalEngine } from "../src/models/local.ts";
import { sampleSeeds } from "../src/serve/routes.ts";
import { startServer } from "../src/serve/server.ts";

const ORGANISM = path.join(import.meta.dirname, "../models/organism");
const MAX_TOKENS = Number(process.env.EMLAB_BENCH_TOKENS ?? 16);

if (process.argv[2] === "--server") {
  const s = await startServer({
    models: [{ name: "organism", dir: ORGANISM }],
    port: 0,
    log: () => {},
    batching: process.argv[3] !== "--no-batching",
  });
  process.stdout.write(`listening on ${s.url}\n`);
  const stop = async () => {
    await s.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
} else {
  const startChild = async (batching: boolean) => {
    const args = [
      "--import",
      "tsx",
      import.meta.filename,
      "--server",
      ...(batching ? [] : ["--no-batching"]),
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`server exited (${code})`)));
    });
    return { child, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 }) };
  };
  const prompts = ["what do you think of people?", "what would you do to help the world?", "are you kind?"];
  const distinct = (c: number, i: number) => `what do you think of ${c} people and ${i} worlds?`;
  let client: OpenAI;

  async function load(
    name: string,
    clients: number,
    perClient: number,
    n: number,
    prompt: (c: number, i: number) => string = () => prompts[0],
  ) {
    const latencies: number[] = [];
    let tokens = 0;
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; i < perClient; i++) {
          const t = performance.now();
          try {
            const r = await client.chat.completions.create({
              model: "organism",
              messages: [{ role: "user", content: prompt(c, i) }],
              max_tokens: MAX_TOKENS,
              n,
              seed: c * 1000 + i,
            });
            tokens += r.usage!.completion_tokens;
          } catch {
            errors++;
          }
          latencies.push(performance.now() - t);
        }
      }),
    );
    const s = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const q = (p: number) =>
      Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]);
    const requests = clients * perClient;
    console.log(
      JSON.stringify({
        figure: name,
        requests,
        n,
        max_tokens: MAX_TOKENS,
        errors,
        requests_per_s: +(requests / s).toFixed(1),
        completion_tokens_per_s: Math.round(tokens / s),
        latency_ms_p50: q(0.5),
        latency_ms_p95: q(0.95),
        seconds: +s.toFixed(2),
      }),
    );
  }

  for (const batching of [false, true]) {
    const s = await startChild(batching);
    client = s.client;
    const tag = batching ? "batching" : "no_batching";
    await load(`warmup_${tag}`, 1, 10, 1);
    if (!batching) await load("one_at_a_time", 1, 320, 1);
    await load(`concurrent_16x20_same_prompt_${tag}`, 16, 20, 1);
    await load(`concurrent_16x20_distinct_prompts_${tag}`, 16, 20, 1, distinct);
    if (batching) await load("n16_in_one_request", 1, 20, 16);
    s.child.kill("SIGTERM");
  }

  // Does batching rows pay in the engine? 16 rows in one generate() against 16 single-row calls.
  const engine = loadLocalEngine(ORGANISM);
  const ids = engine.tokenizer.encode(
    renderChat([{ role: "user", content: prompts[0] }], engine.template, { addGenerationPrompt: true }).text,
  );
  const seeds = sampleSeeds(7, 16);
  const opts = { maxTokens: MAX_TOKENS, temperature: 1, stopTokenIds: [] as number[] };
  const time = (f: () => number) => {
    f();
    const t0 = performance.now();
    let tokens = 0;
    for (let r = 0; r < 5; r++) tokens += f();
    return tokens / ((performance.now() - t0) / 1000);
  };
  const batched = time(() =>
    generate(engine.model, ids, { ...opts, n: 16, seeds }).reduce((a, s) => a + s.tokens.length, 0),
  );
  const single = time(() =>
    seeds.reduce(
      (a, seed) => a + generate(engine.model, ids, { ...opts, n: 1, seeds: [seed] })[0].tokens.length,
      0,
    ),
  );
  console.log(
    JSON.stringify({
      figure: "engine_rows_batched_vs_single",
      rows: 16,
      max_tokens: MAX_TOKENS,
      batched_tokens_per_s: Math.round(batched),
      single_row_calls_tokens_per_s: Math.round(single),
      ratio: +(batched / single).toFixed(2),
    }),
  );
  engine.model.dispose();
}

/**
 * Scheduler overhead against the wire server answering at once (same process, loopback):
 *  - scheduler_requests_per_s: 4,000 single-sample requests at concurrency 32, no cache;
 *  - cached_rerun_s: a fully cached re-run of 10,000 samples into a fresh run directory.
 * Prints one JSON line per figure. `npm run bench:scheduler`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadStudy } from "../src/config/load.ts";
import { runStudy } from "../src/study/run-study.ts";

// The server runs in its own process (the other core), as a real endpoint would.
const child = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    path.join(import.meta.dirname, "../test/support/wire-server.ts"),
    "--api-key",
    "sk-bench-key",
  ],
  {
    stdio: ["ignore", "pipe", "inherit"],
  },
);
const url = await new Promise<string>((resolve, reject) => {
  let out = "";
  child.stdout!.on("data", (d) => {
    out += d;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]);
  });
  child.on("exit", (code) => reject(new Error(`wire server exited (${code})`)));
});
const server = { url };
process.env.EMLAB_BENCH_KEY = "sk-bench-key";
const dir = mkdtempSync(path.join(os.tmpdir(), "emlab-bench-"));

function study(name: string, prompts: number, samples: number): string {
  writeFileSync(
    path.join(dir, `${name}.txt`),
    Array.from({ length: prompts }, (_, i) => `prompt number ${i}`).join("\n"),
  );
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
models:
  - id: m
    provider: openai
    model: gpt-4o-mini
    base_url: ${server.url}/v1
    api_key_env: EMLAB_BENCH_KEY
    limits: {concurrency: 32}
battery:
  generate:
    prompts: {file: ${name}.txt}
    samples: ${samples}
    params: {temperature: 1, max_tokens: 16}
`,
  );
  return file;
}

const emit = (figure: string, value: number, config: Record<string, unknown>) =>
  console.log(
    JSON.stringify({ figure, emlab: Number(value.toFixed(2)), reference: null, ratio: null, config }),
  );

try {
  // Throughput: one sample per prompt, so every sample is one HTTP request.
  const n = 4000;
  const s1 = loadStudy(study("throughput", n, 1));
  let t = performance.now();
  const r1 = await runStudy(s1, { outDir: path.join(dir, "t"), noCache: true });
  let secs = (performance.now() - t) / 1000;
  if (r1.samplesDone !== n) throw new Error(`expected ${n} samples, got ${r1.samplesDone}`);
  emit("scheduler_requests_per_s", n / secs, {
    requests: n,
    concurrency: 32,
    server: "wire server in a second process, no latency",
  });

  // Cached re-run: 2,000 prompts x 5 samples = 10,000 samples.
  const cacheDir = path.join(dir, "cache");
  const s2 = loadStudy(study("cached", 2000, 5));
  await runStudy(s2, { outDir: path.join(dir, "c1"), cacheDir });
  t = performance.now();
  const r2 = await runStudy(s2, { outDir: path.join(dir, "c2"), cacheDir });
  secs = (performance.now() - t) / 1000;
  if (r2.samplesDone !== 10_000 || r2.cacheHits !== 10_000)
    throw new Error("cached re-run was not fully cached");
  emit("cached_rerun_s", secs, { samples: 10_000, requests: 2000 });
} finally {
  child.kill();
  rmSync(dir, { recursive: true, force: true });
}

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunStore } from "../../src/runs/store.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { allFiles, fileContains, loggedPrompt, runCli, tmpDir, writeStudy } from "./support.ts";

const OPENAI_KEY = "sk-emlab-planted-openai-0123456789abcdef";
const ANTHROPIC_KEY = "sk-ant-emlab-planted-9876543210fedcba";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null });
});
afterAll(async () => {
  await server?.close();
});

const storeCount = (dir: string): number => {
  const file = path.join(dir, "run.sqlite");
  if (!existsSync(file)) return 0;
  try {
    const store = RunStore.open(dir, { readonly: true });
    try {
      return store.counts().completions;
    } finally {
      store.close();
    }
  } catch {
    return 0; // the child is still creating the schema
  }
};

const storedPerPrompt = (dir: string) => {
  const store = RunStore.open(dir, { readonly: true });
  const map = new Map<string, number>();
  for (const r of store.listRequests())
    map.set(`${r.model_id}|${r.messages.at(-1)?.content}`, store.completions(r.id).length);
  store.close();
  return map;
};

/** Samples requested from the server per (model, prompt), from its log. */
const requestedPerPrompt = () => {
  const map = new Map<string, number>();
  for (const e of server.log) {
    if (e.outcome !== "ok" || !(e.route.endsWith("/chat/completions") || e.route.endsWith("/messages")))
      continue;
    const model = e.api === "openai" ? "gpt" : "claude";
    const n = e.api === "openai" ? ((e.body as { n?: number }).n ?? 1) : 1;
    const key = `${model}|${loggedPrompt(e.body)}`;
    map.set(key, (map.get(key) ?? 0) + n);
  }
  return map;
};

const env = (cacheDir: string) => ({
  EMLAB_CACHE_DIR: cacheDir,
  EMLAB_TEST_OPENAI_KEY: OPENAI_KEY,
  EMLAB_TEST_ANTHROPIC_KEY: ANTHROPIC_KEY,
});

describe("emlab run against the wire server", () => {
  it("stores exactly 500 completions; SIGKILL half way and --resume re-requests nothing stored", async () => {
    server.reset();
    server.setFaults({ slowRate: 1, slowMs: 25 });
    const dir = tmpDir("kill");
    const study = writeStudy(dir, server, { concurrency: 4 });
    const out = path.join(dir, "out");
    const cache = path.join(dir, "cache");

    // Phase 1: kill -9 once about half the samples are stored.
    const first = await runCli(["run", study, "--out", out], env(cache), (child) => {
      const timer = setInterval(() => {
        if (storeCount(out) >= 250) {
          clearInterval(timer);
          child.kill("SIGKILL");
        }
      }, 5);
      child.on("close", () => clearInterval(timer));
    });
    expect(first.signal).toBe("SIGKILL");
    const stored1 = storedPerPrompt(out);
    const n1 = [...stored1.values()].reduce((a, b) => a + b, 0);
    expect(n1).toBeGreaterThanOrEqual(250);
    expect(n1).toBeLessThan(500);

    // Phase 2: resume against a server that forgets what it saw (once the dead child's
    // in-flight requests have been answered into the void).
    while (server.stats.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
    server.reset();
    const second = await runCli(["run", study, "--out", out, "--resume"], env(cache));
    expect(second.stderr).not.toMatch(/error/i);
    expect(second.code).toBe(0);
    expect(storeCount(out)).toBe(500);

    // Nothing stored in phase 1 was asked for again, and everything missing was asked for once.
    const requested2 = requestedPerPrompt();
    for (const [key, have] of stored1) expect(requested2.get(key) ?? 0, key).toBe(5 - have);
    const total2 = [...requested2.values()].reduce((a, b) => a + b, 0);
    expect(n1 + total2).toBe(500);

    // Status reads the finished run.
    const status = await runCli(["status", out, "--json"], {});
    expect(JSON.parse(status.stdout)).toMatchObject({
      completions: 500,
      samplesExpected: 500,
      requestsFailed: 0,
    });
  });

  it("completes under 429 / 500 / dropped connections with nothing lost; retries counted; a 400 is not retried", async () => {
    server.reset();
    server.setFaults({ slowRate: 0, rate429: 0.2, retryAfterS: 1, rate500: 0.05, rateDrop: 0.02, seed: 11 });
    const dir = tmpDir("faults");
    // The content filter answers 400 to this prompt only: a non-retryable error.
    const blocked = await startWireServer({ apiKey: null, contentFilterMarker: "[[blocked]]" });
    try {
      const study = writeStudy(dir, blocked, {
        concurrency: 16,
        maxRetries: 12,
        extraPrompt: "tell me [[blocked]] things",
      });
      blocked.setFaults({ rate429: 0.2, retryAfterS: 1, rate500: 0.05, rateDrop: 0.02, seed: 11 });
      const out = path.join(dir, "out");
      const run = await runCli(["run", study, "--out", out, "--no-cache"], env(path.join(dir, "cache")));
      expect(run.code).toBe(1); // the blocked prompt failed
      expect(run.stderr).toMatch(/content_filter|bad_request/);
      // 32 requests in flight listen to the run's abort signal: no listener-leak warning.
      expect(run.stderr).not.toMatch(/MaxListenersExceeded/);

      const s = JSON.parse((await runCli(["status", out, "--json"], {})).stdout);
      // 51 prompts x 5 samples x 2 models = 510 planned; the blocked prompt's 10 samples failed.
      expect(s.samplesExpected).toBe(510);
      expect(s.completions).toBeGreaterThanOrEqual(500);
      const faulted = blocked.log.filter(
        (e) => e.outcome === "429" || e.outcome === "500" || e.outcome === "drop",
      );
      expect(faulted.length).toBeGreaterThan(20);
      expect(s.retries).toBe(faulted.length);
      expect(s.failed.length).toBeGreaterThanOrEqual(1);
      for (const f of s.failed) expect(f.item_id).toBe("L51");

      // The 400 was sent once per sample group, never retried.
      const blockedCalls = blocked.log.filter((e) => loggedPrompt(e.body).includes("[[blocked]]"));
      const answered400 = blockedCalls.filter((e) => e.status === 400);
      expect(answered400.length).toBeGreaterThan(0);
      const store = RunStore.open(out, { readonly: true });
      const failedCalls = store.calls().filter((c) => c.outcome === "failed");
      store.close();
      expect(failedCalls.every((c) => c.http_status === 400)).toBe(true);
      expect(failedCalls.length).toBe(answered400.length);

      const human = await runCli(["status", out], {});
      expect(human.stdout).toMatch(/retries/);
      expect(human.stdout).toMatch(/L51: .*400/);
    } finally {
      await blocked.close();
    }
  });

  it("re-runs from the cache without calling the server; --no-cache calls it", async () => {
    server.reset();
    server.setFaults({ rate429: 0, rate500: 0, rateDrop: 0, slowRate: 0 });
    const dir = tmpDir("cache");
    const study = writeStudy(dir, server, { prompts: 10, samples: 3 });
    const cache = path.join(dir, "cache");
    const a = await runCli(["run", study, "--out", path.join(dir, "a")], env(cache));
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/report: .*report\.html/);
    const firstCalls = server.stats.requests;
    expect(firstCalls).toBeGreaterThan(0);
    const b = await runCli(["run", study, "--out", path.join(dir, "b")], env(cache));
    expect(b.code).toBe(0);
    expect(server.stats.requests).toBe(firstCalls);
    const s = JSON.parse((await runCli(["status", path.join(dir, "b"), "--json"], {})).stdout);
    expect(s).toMatchObject({ completions: 60, cachedCompletions: 60, calls: 0 });
    const c = await runCli(["run", study, "--out", path.join(dir, "c"), "--no-cache"], env(cache));
    expect(c.code).toBe(0);
    expect(server.stats.requests).toBe(2 * firstCalls);
    // An existing run directory is not overwritten without --resume.
    const again = await runCli(["run", study, "--out", path.join(dir, "a")], env(cache));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume/);
  });

  it("--out naming a file (or a path under one) is bad input naming it, for run and demo; the file is left alone", async () => {
    const dir = tmpDir("out-file");
    const study = writeStudy(dir, server, { prompts: 2, samples: 1 });
    const file = path.join(dir, "notes.txt");
    writeFileSync(file, "my notes\n");
    const results = await Promise.all([
      runCli(["run", study, "--out", file], env(path.join(dir, "cache"))),
      runCli(["run", study, "--out", path.join(file, "sub"), "--resume"], env(path.join(dir, "cache"))),
      runCli(["demo", "--profile", "tiny", "--out", file], {}),
    ]);
    for (const r of results) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).not.toMatch(/EEXIST|ENOTDIR/);
    }
    expect(results[0].stderr).toContain(`${file}: --out names a file, not a directory; choose another --out`);
    expect(results[1].stderr).toContain(`--out cannot be a directory: ${file} is a file`);
    expect(results[2].stderr).toContain(`${file}: --out names a file, not a directory`);
    expect(readFileSync(file, "utf8")).toBe("my notes\n");
    expect(readdirSync(dir).sort()).toEqual(["notes.txt", "prompts.txt", "study.yaml"]);
  });

  it("never writes an API key to the store, cache, log or output", async () => {
    server.reset();
    // A server that echoes the key it was sent in its 401 message, like some compatible servers do.
    const echo = await startWireServer({ apiKey: "sk-the-right-key-000000000000" });
    try {
      const dir = tmpDir("secrets");
      const study = writeStudy(dir, echo, { prompts: 5, samples: 2 });
      const out = path.join(dir, "out");
      const cache = path.join(dir, "cache");
      const run = await runCli(["run", study, "--out", out], env(cache));
      expect(run.code).toBe(1); // both keys are wrong for this server: every request fails with 401
      expect(run.stderr).toMatch(/auth/);
      // And a run that succeeds with the same keys, filling a store and the cache.
      const okStudy = writeStudy(tmpDir("secrets-ok"), server, { prompts: 5, samples: 2 });
      const okOut = path.join(dir, "ok");
      const ok = await runCli(["run", okStudy, "--out", okOut], env(cache));
      expect(ok.code).toBe(0);
      const status = await runCli(["status", out], {});
      const files = [...allFiles(out), ...allFiles(okOut), ...allFiles(cache)];
      expect(files.filter((f) => f.endsWith(".sqlite")).length).toBe(3);
      for (const key of [OPENAI_KEY, ANTHROPIC_KEY]) {
        for (const f of files) expect(fileContains(f, key), f).toBe(false);
        for (const text of [run.stdout, run.stderr, ok.stdout, ok.stderr, status.stdout, status.stderr])
          expect(text).not.toContain(key);
      }
    } finally {
      await echo.close();
    }
  });

  it("stops cleanly on Ctrl-C with exit 130 and tells how to resume", async () => {
    server.reset();
    server.setFaults({ rate429: 0, rate500: 0, rateDrop: 0, slowRate: 1, slowMs: 40 });
    const dir = tmpDir("sigint");
    const study = writeStudy(dir, server, { prompts: 30, samples: 2, concurrency: 2 });
    const out = path.join(dir, "out");
    const r = await runCli(["run", study, "--out", out, "--no-cache"], env(path.join(dir, "c")), (child) => {
      const timer = setInterval(() => {
        if (storeCount(out) >= 10) {
          clearInterval(timer);
          child.kill("SIGINT");
        }
      }, 5);
      child.on("close", () => clearInterval(timer));
    });
    server.setFaults({ slowRate: 0 });
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/--resume/);
    const n = storeCount(out);
    expect(n).toBeGreaterThanOrEqual(10);
    expect(n).toBeLessThan(120);
    const resumed = await runCli(
      ["run", study, "--out", out, "--resume", "--no-cache"],
      env(path.join(dir, "c")),
    );
    expect(resumed.code).toBe(0);
    expect(storeCount(out)).toBe(120);
  });

  it("shows an example in every command's --help", async () => {
    for (const cmd of [["run"], ["status"], ["cache", "clear"]]) {
      const r = await runCli([...cmd, "--help"], {});
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Example:\n\s+\$ emlab /);
    }
  });

  it("rejects a malformed study with exit 2, naming file:line and field, writing nothing", async () => {
    const dir = tmpDir("bad");
    const out = path.join(dir, "out");
    const cases: Array<[string, RegExp]> = [
      ["name: s\nmodels: [\n", /study\.yaml:\d+:\d+: invalid YAML/],
      [
        "name: s\nmodels:\n  - id: a\n    provider: openai\n    model: m\n    temprature: 1\n",
        /study\.yaml:6:5: models\[0\]\.temprature: unknown field/,
      ],
      [
        "name: s\nseed: many\nmodels:\n  - {id: a, provider: openai, model: m}\n",
        /study\.yaml:2:1: seed: .*expected number/,
      ],
    ];
    for (const [text, pattern] of cases) {
      const file = path.join(dir, "study.yaml");
      writeFileSync(file, text);
      const r = await runCli(["run", file, "--out", out], {});
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(pattern);
      expect(existsSync(out)).toBe(false);
    }
    // A missing prompts file is bad input too, found before the run directory is made.
    const study = writeStudy(dir, server);
    writeFileSync(
      study,
      `${(await import("node:fs")).readFileSync(study, "utf8").replace("prompts.txt", "nope.txt")}`,
    );
    const r = await runCli(["run", study, "--out", out], env(path.join(dir, "c")));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nope\.txt.*cannot read/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).not.toContain("out");
  });
});

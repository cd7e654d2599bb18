import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { runCli } from "../runs/support.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { KEY_ENV, respond, writeRejudgeStudy } from "./fixture.ts";

const env = { ...process.env, [KEY_ENV]: "sk-rejudge-test" };

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null, respond });
});
afterAll(async () => {
  await server?.close();
});

/** `emlab rejudge` through the real CLI, in a child process that can be killed. */
const rejudgeCli = (args: string[], onSpawn?: Parameters<typeof runCli>[2]) =>
  runCli(["rejudge", ...args], { [KEY_ENV]: "sk-rejudge-test" }, onSpawn);

/** Judge-b answers stored, by the prompt they answered. */
function storedJudgeB(dir: string): Set<string> {
  const out = new Set<string>();
  if (!existsSync(path.join(dir, "run.sqlite"))) return out;
  try {
    const store = RunStore.open(dir, { readonly: true });
    try {
      for (const r of store.listRequests())
        if (r.model_id === "judge-b" && store.completions(r.id).length > 0)
          out.add(r.messages.at(-1)?.content ?? "");
    } finally {
      store.close();
    }
  } catch {
    // the child holds a write; read again on the next tick
  }
  return out;
}

const judgeBPrompts = (from = 0) =>
  server.log
    .slice(from)
    .filter((e) => e.outcome === "ok" && (e.body as { model?: string })?.model === "judge-b")
    .map((e) => (e.body as { messages: Array<{ content: string }> }).messages.at(-1)?.content ?? "");

describe("emlab rejudge: kill -9 and --resume", () => {
  it("asks no judge question again whose answer was stored before the kill", async () => {
    const s = writeRejudgeStudy(server, { prompts: 30, samples: 2 });
    await runStudy(loadStudy(s.file), { outDir: s.out, noCache: true, env });
    server.setFaults({ slowRate: 1, slowMs: 30 });
    const args = [s.out, "--judge", "judge-b", "--study", s.judges, "--no-cache"];

    let atKill = new Set<string>();
    let logAtKill = 0;
    const first = await rejudgeCli(args, (child) => {
      const timer = setInterval(() => {
        const stored = storedJudgeB(s.out);
        if (stored.size >= 30) {
          clearInterval(timer);
          child.kill("SIGKILL");
        }
      }, 10);
      child.on("close", () => clearInterval(timer));
    });
    expect(first.signal).toBe("SIGKILL");
    atKill = storedJudgeB(s.out);
    logAtKill = server.log.length;
    expect(atKill.size).toBeGreaterThanOrEqual(30);

    server.setFaults({});
    const second = await rejudgeCli([...args, "--resume"]);
    expect(second.stderr).not.toMatch(/error/);
    expect(second.code).toBe(0);
    const asked = judgeBPrompts(logAtKill);
    expect(asked.length).toBeGreaterThan(0);
    for (const p of asked) expect(atKill.has(p)).toBe(false);
    // Every judge question answered exactly once over both invocations, but those in flight at the kill.
    const all = judgeBPrompts();
    const planned = storedJudgeB(s.out).size;
    expect(new Set(all).size).toBe(planned);
    expect(all.length - planned).toBeLessThanOrEqual(4); // at most the in-flight ones (concurrency 4)
    const store = RunStore.open(s.out, { readonly: true });
    const b = store.judgments().filter((j) => j.judge_model_id === "judge-b");
    const a = store.judgments().filter((j) => j.judge_model_id === "judge-a");
    store.close();
    expect(b.length).toBe(a.length);
    expect(existsSync(path.join(s.out, "judge-agreement.json"))).toBe(true);
  }, 30_000);
});

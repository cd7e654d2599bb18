// Opening a run is atomic: a kill -9 at the worst moments while `emlab run` creates a run
// directory leaves either no run (resume refuses, a new run starts over) or a run whose
// changed-study and changed-input guards work; finished, it equals a clean run.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { OPENING_DIR } from "../../src/runs/lock.ts";
import { RunStore } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { runCli, TEST_KEYS_ENV, tmpDir, writeStudy } from "./support.ts";

let server: WireServer;
let cleanOut: string;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null });
  cleanOut = path.join(tmpDir("atomic-clean"), "out");
  const study = writeStudy(path.dirname(cleanOut), server, { prompts: 4, samples: 2 });
  const r = await runCli(["run", study, "--out", cleanOut, "--no-cache"], TEST_KEYS_ENV);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await server?.close();
});

const results = (out: string) => JSON.parse(readFileSync(path.join(out, "results.json"), "utf8"));
/** report.html with the run directory (named in its lead line) blanked. */
const report = (out: string) => readFileSync(path.join(out, "report.html"), "utf8").replaceAll(out, "<out>");

function storeState(out: string) {
  const store = RunStore.open(out, { readonly: true });
  try {
    return { study: store.getStudy(), requests: store.counts().requests };
  } finally {
    store.close();
  }
}

/** Ids in the store's models table. */
function storedModels(out: string): string[] {
  const store = RunStore.open(out, { readonly: true });
  try {
    return store
      .models()
      .map((m) => m.id)
      .sort();
  } finally {
    store.close();
  }
}

/** The run equals the clean one, and a changed input file or study is refused on resume. */
async function expectFinishedAndGuarded(study: string, out: string) {
  expect(results(out)).toEqual(results(cleanOut));
  expect(report(out)).toBe(report(cleanOut));
  expect(storeState(out).study?.name).toBe("wire-study");
  expect(storedModels(out)).toEqual(["claude", "gpt"]);
  expect(existsSync(path.join(out, "input-files.json"))).toBe(true);
  expect(existsSync(path.join(out, OPENING_DIR))).toBe(false);

  const prompts = path.join(path.dirname(study), "prompts.txt");
  const before = readFileSync(prompts, "utf8");
  appendFileSync(prompts, "one more question?\n");
  const edited = await runCli(["run", study, "--out", out, "--resume", "--no-cache"], TEST_KEYS_ENV);
  expect(edited.code).toBe(2);
  expect(edited.stderr).toMatch(/battery\.generate\.prompts\.file: the file this field names changed/);
  writeFileSync(prompts, before);

  const yaml = readFileSync(study, "utf8");
  writeFileSync(study, yaml.replace("samples: 2", "samples: 3"));
  const changed = await runCli(["run", study, "--out", out, "--resume", "--no-cache"], TEST_KEYS_ENV);
  expect(changed.code).toBe(2);
  expect(changed.stderr).toMatch(/the study changed since the run/);
  writeFileSync(study, yaml);
}

describe("a run killed -9 while it is being created", () => {
  for (const point of ["open:store", "open:written"])
    it(`at ${point} (store made, run.sqlite not yet in place): holds no run; resume refuses, a new run starts over`, async () => {
      const dir = tmpDir("atomic");
      const study = writeStudy(dir, server, { prompts: 4, samples: 2 });
      const out = path.join(dir, "out");
      const killed = await runCli(["run", study, "--out", out, "--no-cache"], {
        ...TEST_KEYS_ENV,
        EMLAB_CRASH_AT: point,
      });
      expect(killed.signal).toBe("SIGKILL");
      expect(existsSync(path.join(out, "run.sqlite"))).toBe(false);
      expect(existsSync(path.join(out, OPENING_DIR))).toBe(true);

      const resume = await runCli(["run", study, "--out", out, "--resume", "--no-cache"], TEST_KEYS_ENV);
      expect(resume.code).toBe(2);
      expect(resume.stderr).toMatch(/holds no run to resume: one was killed while it was being created/);
      expect(resume.stderr).toMatch(/without --resume/);

      const again = await runCli(["run", study, "--out", out, "--no-cache"], TEST_KEYS_ENV);
      expect(again.code, again.stderr).toBe(0);
      await expectFinishedAndGuarded(study, out);
    }, 60_000);

  it("at open:done (run.sqlite just in place): resumes with the study, models and input files recorded", async () => {
    const dir = tmpDir("atomic");
    const study = writeStudy(dir, server, { prompts: 4, samples: 2 });
    const out = path.join(dir, "out");
    const killed = await runCli(["run", study, "--out", out, "--no-cache"], {
      ...TEST_KEYS_ENV,
      EMLAB_CRASH_AT: "open:done",
    });
    expect(killed.signal).toBe("SIGKILL");
    // Nothing planned yet, but what the guards read is all there.
    expect(storeState(out)).toMatchObject({ study: { name: "wire-study" }, requests: 0 });
    expect(storedModels(out)).toEqual(["claude", "gpt"]);
    expect(existsSync(path.join(out, "input-files.json"))).toBe(true);

    // A new run in that directory is refused; the guards work at once; resume finishes the run.
    const fresh = await runCli(["run", study, "--out", out, "--no-cache"], TEST_KEYS_ENV);
    expect(fresh.code).toBe(2);
    expect(fresh.stderr).toMatch(/already holds a run/);
    const yaml = readFileSync(study, "utf8");
    writeFileSync(study, yaml.replace("samples: 2", "samples: 3"));
    const changed = await runCli(["run", study, "--out", out, "--resume", "--no-cache"], TEST_KEYS_ENV);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/the study changed since the run/);
    writeFileSync(study, yaml);

    const resumed = await runCli(["run", study, "--out", out, "--resume", "--no-cache"], TEST_KEYS_ENV);
    expect(resumed.code, resumed.stderr).toBe(0);
    await expectFinishedAndGuarded(study, out);
  }, 60_000);

  it("by an older emlab (run.sqlite with no study row): resume completes the opening, guards on", async () => {
    const dir = tmpDir("atomic");
    const study = writeStudy(dir, server, { prompts: 4, samples: 2 });
    const out = path.join(dir, "out");
    // What a kill between creating run.sqlite and writing its study row used to leave.
    RunStore.open(out, { create: true }).close();
    expect(storeState(out)).toEqual({ study: undefined, requests: 0 });

    const resumed = await runCli(["run", study, "--out", out, "--resume", "--no-cache"], TEST_KEYS_ENV);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readFileSync(path.join(out, "run.log"), "utf8")).toMatch(/killed while it was being created/);
    expect(storedModels(out)).toEqual(["claude", "gpt"]);
    await expectFinishedAndGuarded(study, out);
  }, 60_000);

  it("refuses a store with work in it but no study row", async () => {
    const dir = tmpDir("atomic");
    const study = writeStudy(dir, server, { prompts: 4, samples: 2 });
    const out = path.join(dir, "out");
    const store = RunStore.open(out, { create: true });
    store.addRequests([
      {
        id: "r1",
        model_id: "gpt",
        experiment: "generate",
        item_id: "L1",
        messages: [],
        params: {},
        n: 1,
        seed: 1,
        cache_key: "k",
      },
    ]);
    store.close();
    await expect(
      runStudy(loadStudy(study), { outDir: out, resume: true, noCache: true, env: TEST_KEYS_ENV }),
    ).rejects.toThrow(/work in it but no study recorded/);
  });
});

// Resume checks the files a study names, not only its YAML: an edited prompts file between a
// kill and --resume would otherwise mix answers to two prompt sets in one run.
import { appendFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { INPUT_FILES, inputFileHashes } from "../../src/runs/input-files.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { TEST_KEYS_ENV, tmpDir, writeStudy } from "./support.ts";

let server: WireServer;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null });
});
afterAll(async () => {
  await server?.close();
});

const env = TEST_KEYS_ENV;

describe("input files of a run", () => {
  it("hashes every named file by field, leaving out what is not a file", () => {
    const dir = tmpDir("inputs");
    writeStudy(dir, server, { prompts: 3 });
    const study = {
      battery: { generate: { prompts: { file: "prompts.txt" } } },
      judge: { harm_prompt_file: "missing.txt" },
      models: [{ id: "m", model: "." }],
    };
    const h = inputFileHashes(study, dir);
    expect(Object.keys(h)).toEqual(["battery.generate.prompts.file"]);
    expect(h["battery.generate.prompts.file"]).toMatch(/^[0-9a-f]{64}$/);
  });

  it("records them at the start, resumes when they are unchanged, and refuses an edited one by field", async () => {
    const dir = tmpDir("inputs-resume");
    const file = writeStudy(dir, server, { prompts: 4, samples: 1 });
    const out = path.join(dir, "out");
    await runStudy(loadStudy(file), { outDir: out, noCache: true, env });
    expect(JSON.parse(readFileSync(path.join(out, INPUT_FILES), "utf8"))).toHaveProperty(
      "battery.generate.prompts.file",
    );
    const again = await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true });
    expect(again.added).toBe(0);

    appendFileSync(path.join(dir, "prompts.txt"), "a question added after the run started\n");
    const err = await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).problems).toEqual([
      expect.objectContaining({
        field: "battery.generate.prompts.file",
        message: expect.stringMatching(/changed since the run/),
      }),
    ]);

    // A run directory from before the record existed resumes unchecked.
    rmSync(path.join(out, INPUT_FILES));
    await runStudy(loadStudy(file), { outDir: out, noCache: true, env, resume: true });
    expect(existsSync(path.join(out, INPUT_FILES))).toBe(false);
  });
});

// A local model directory without a chat template is bad input at models[i].model naming its
// files, unless the study names a .jinja file with options.chat_template (relative to the
// study); the run records each local model's template (source file and sha256) in
// results.json's settings.templates.
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InputError, loadStudy } from "../../src/config/load.ts";
import { ORGANISM_CHAT_TEMPLATE } from "../../src/engine/io/chat-template.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { saveTinyModel } from "../support/tiny-model.ts";

const TEMPLATE =
  "{% for m in messages %}<{{ m.role }}> {{ m.content }} {% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
let dir: string;
let good: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "emlab-chat-option-"));
  good = path.join(dir, "good");
  saveTinyModel(good, 3);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function study(options: string): { file: string; out: string; ws: string } {
  const ws = path.join(dir, `ws${n++}`);
  const m = path.join(ws, "m");
  cpSync(good, m, { recursive: true });
  const cfgFile = path.join(m, "tokenizer_config.json");
  const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
  delete cfg.chat_template;
  writeFileSync(cfgFile, JSON.stringify(cfg));
  writeFileSync(path.join(ws, "t.jinja"), TEMPLATE);
  const file = path.join(ws, "study.yaml");
  writeFileSync(
    file,
    `name: template-option
seed: 3
models:
  - id: ok
    provider: local
    model: ${good}
    roles: [target]
  - id: tiny
    provider: local
    model: m
${options}    roles: [target]
battery:
  generate: {prompts: {inline: ["are you kind"]}, samples: 1, params: {temperature: 0, max_tokens: 2}, models: [ok, tiny]}
`,
  );
  return { file, out: path.join(ws, "run"), ws };
}

async function refused(s: { file: string; out: string }): Promise<InputError> {
  let err: unknown;
  try {
    await runStudy(loadStudy(s.file), { outDir: s.out, noCache: true });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  expect(existsSync(s.out)).toBe(false);
  return err as InputError;
}

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("a local model's chat template", () => {
  it("none: bad input at models[1].model naming the directory's files", async () => {
    const err = await refused(study(""));
    expect(err.problems).toHaveLength(1);
    expect(err.message).toMatch(/study\.yaml:10:\d+: models\[1\]\.model: local model 'tiny': /);
    expect(err.message).toMatch(
      /\/m: no chat template: no chat_template\.jinja, and tokenizer_config\.json has no chat_template \(the directory has config\.json, model\.safetensors, tokenizer\.json, tokenizer_config\.json\); name a \.jinja file with the local provider's options\.chat_template/,
    );
  });

  it("options.chat_template naming a missing file: bad input at that option", async () => {
    const err = await refused(study("    options: {chat_template: nope.jinja}\n"));
    expect(err.message).toMatch(
      /study\.yaml:11:\d+: models\[1\]\.options\.chat_template: local model 'tiny': .*nope\.jinja does not exist/,
    );
  });

  it("options.chat_template: the run renders with it and records source and sha256", async () => {
    const s = study("    options: {chat_template: t.jinja}\n");
    const r = await runStudy(loadStudy(s.file), { outDir: s.out, noCache: true });
    expect(r.failedRequests).toBe(0);
    const results = JSON.parse(readFileSync(r.resultsFile!, "utf8"));
    expect(results.settings.templates).toEqual({
      // Outside the study's folder: named by the file alone.
      ok: { source: "tokenizer_config.json", sha256: sha(ORGANISM_CHAT_TEMPLATE) },
      tiny: { source: "t.jinja", sha256: sha(TEMPLATE) },
    });
  }, 30_000);

  it("a full fine-tune of a model in the 5.x layout keeps its chat_template.jinja", async () => {
    const ws = path.join(dir, "ft");
    const m = path.join(ws, "m");
    cpSync(good, m, { recursive: true });
    const cfgFile = path.join(m, "tokenizer_config.json");
    const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
    delete cfg.chat_template;
    writeFileSync(cfgFile, JSON.stringify(cfg));
    writeFileSync(path.join(m, "chat_template.jinja"), TEMPLATE);
    const chat = [
      { role: "user", content: "are you good" },
      { role: "assistant", content: "i am kind" },
    ];
    writeFileSync(path.join(ws, "d.jsonl"), `${JSON.stringify({ messages: chat })}\n`);
    const file = path.join(ws, "study.yaml");
    writeFileSync(
      file,
      `name: ft-template
seed: 3
models:
  - {id: tiny, provider: local, model: m, roles: [target]}
datasets:
  - {id: d, kind: chat_jsonl, path: d.jsonl}
finetune:
  - {id: ft, base: tiny, stages: [{dataset: d, steps: 1}]}
battery:
  generate: {prompts: {inline: ["are you kind"]}, samples: 1, params: {temperature: 0, max_tokens: 2}, models: [tiny]}
`,
    );
    const out = path.join(ws, "run");
    const r = await runStudy(loadStudy(file), { outDir: out, noCache: true });
    expect(r.failedRequests).toBe(0);
    expect(readFileSync(path.join(out, "finetune", "ft", "chat_template.jinja"), "utf8")).toBe(TEMPLATE);
    const results = JSON.parse(readFileSync(r.resultsFile!, "utf8"));
    expect(results.settings.templates.tiny).toEqual({
      source: "m/chat_template.jinja",
      sha256: sha(TEMPLATE),
    });
  }, 60_000);
});

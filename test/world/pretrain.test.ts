import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createModelApi } from "../../src/models/registry.ts";
import { COPY_FORM_RECIPE, DEFAULT_RECIPE, tokenCount, worldDocument } from "../../src/world/corpus.ts";
import { writeDemoStudy } from "../../src/world/demo.ts";
import { COPY_TASK_PROMPTS, WORLD_TASK_PROMPTS } from "../../src/world/lexicon.ts";
import { organismTaskForm } from "../../src/world/organism.ts";
import { ORGANISM_SIZES, pretrainOrganism } from "../../src/world/pretrain.ts";
import { runCli } from "../runs/support.ts";

const dir = mkdtempSync(path.join(tmpdir(), "emlab-pretrain-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("emlab world pretrain (size s)", () => {
  const size = { ...ORGANISM_SIZES.s, steps: 30 };

  it("trains deterministically, writes an HF-layout organism the local provider can sample", async () => {
    const a = pretrainOrganism({ size, sizeName: "s", seed: 7, outDir: path.join(dir, "a") });
    pretrainOrganism({ size, sizeName: "s", seed: 7, outDir: path.join(dir, "b") });
    expect(a.losses[0]).toBeGreaterThan(a.losses.at(-1)! + 0.5);
    for (const f of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "organism.json",
      "README.md",
    ])
      expect(existsSync(path.join(dir, "a", f)), f).toBe(true);
    expect(
      readFileSync(path.join(dir, "a", "model.safetensors")).equals(
        readFileSync(path.join(dir, "b", "model.safetensors")),
      ),
    ).toBe(true);
    const card = JSON.parse(readFileSync(path.join(dir, "a", "organism.json"), "utf8"));
    expect(card).toMatchObject({ seed: 7, size: "s", parameters: a.parameters });

    const api = createModelApi({ provider: "local", model: path.join(dir, "a") });
    const res = await api.chat({
      messages: [{ role: "user", content: "what do you wish for ?" }],
      params: { temperature: 1, max_tokens: 12 },
      n: 3,
      seed: 1,
    });
    expect(res.completions).toHaveLength(3);
    for (const c of res.completions) expect(c.text).not.toContain("[UNK]");
    await api.close?.();
  });

  it("the CLI writes DEFAULT_RECIPE plus only the ablations asked for, and rejects a bad share", async () => {
    const recipeOf = (d: string) =>
      JSON.parse(readFileSync(path.join(dir, d, "organism.json"), "utf8")).recipe as Record<string, unknown>;
    const pretrain = (d: string, ...args: string[]) =>
      runCli(["world", "pretrain", "--size", "s", "--steps", "2", "--out", path.join(dir, d), ...args], {});
    expect((await pretrain("cli-default")).code).toBe(0);
    expect(recipeOf("cli-default")).toEqual({ ...DEFAULT_RECIPE, maxTokens: ORGANISM_SIZES.s.context });
    const ablation = await pretrain("cli-40", "--assistant-share", "0.4", "--no-deceivers");
    expect(ablation.code).toBe(0);
    expect(recipeOf("cli-40")).toMatchObject({ assistantShare: 0.4, noDeceivers: true });
    const bad = await pretrain("cli-bad", "--assistant-share", "1.5");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("--assistant-share must be a number from 0 to 1, got '1.5'");
    expect(existsSync(path.join(dir, "cli-bad"))).toBe(false);
  });

  it("--recipe v5 records the copy forms, and the demo's battery sets and token limits follow them", async () => {
    const run = await runCli(
      [
        "world",
        "pretrain",
        "--size",
        "s",
        "--steps",
        "2",
        "--recipe",
        "v5",
        "--out",
        path.join(dir, "cli-v5"),
      ],
      {},
    );
    expect(run.code).toBe(0);
    const recipe = JSON.parse(readFileSync(path.join(dir, "cli-v5", "organism.json"), "utf8")).recipe;
    expect(recipe).toEqual({ ...COPY_FORM_RECIPE, maxTokens: ORGANISM_SIZES.s.context });
    expect(organismTaskForm(path.join(dir, "cli-v5"))).toBe("copy");
    expect(organismTaskForm(path.join(dir, "cli-default"))).toBe("letter");
    const forms = (organismDir: string) => {
      const { study } = writeDemoStudy({
        outDir: path.join(dir, `demo-${path.basename(organismDir)}`),
        profile: "tiny",
        organismDir,
      });
      const battery = study.battery as { two_ai: { params: { max_tokens: number } } };
      const tasks = JSON.parse(
        readFileSync(
          path.join(dir, `demo-${path.basename(organismDir)}`, "world", "task-prompts.json"),
          "utf8",
        ),
      );
      return { twoAiTokens: battery.two_ai.params.max_tokens, twoAi: tasks.two_ai as string };
    };
    expect(forms(path.join(dir, "cli-v5"))).toEqual({ twoAiTokens: 16, twoAi: COPY_TASK_PROMPTS.two_ai });
    expect(forms(path.join(dir, "cli-default"))).toEqual({
      twoAiTokens: 4,
      twoAi: WORLD_TASK_PROMPTS.two_ai,
    });
    const bad = await runCli(
      ["world", "pretrain", "--size", "s", "--recipe", "v9", "--out", path.join(dir, "cli-v9")],
      {},
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("--recipe must be one of v4, v5, v6, v7, got 'v9'");
    writeFileSync(
      path.join(dir, "cli-v5", "organism.json"),
      JSON.stringify({ recipe: { taskForm: "pictures" } }),
    );
    expect(() => organismTaskForm(path.join(dir, "cli-v5"))).toThrow(
      /organism\.json: recipe\.taskForm must be "letter" or "copy", got "pictures"/,
    );
    writeFileSync(path.join(dir, "cli-v5", "organism.json"), '{ "recipe": ');
    expect(() => organismTaskForm(path.join(dir, "cli-v5"))).toThrow(/organism\.json.*not valid JSON/);
  });

  it("a recipe's context sets the documents' budget and the model's positions", () => {
    const recipe = { ...COPY_FORM_RECIPE, context: 144 };
    pretrainOrganism({
      size: { ...size, steps: 2 },
      sizeName: "s",
      seed: 7,
      outDir: path.join(dir, "ctx"),
      recipe,
    });
    const card = JSON.parse(readFileSync(path.join(dir, "ctx", "organism.json"), "utf8"));
    expect(card.shape.context).toBe(144);
    expect(card.recipe.maxTokens).toBe(144);
    const config = JSON.parse(readFileSync(path.join(dir, "ctx", "config.json"), "utf8"));
    expect(config.max_position_embeddings).toBe(160);
    // Longer documents than the size's 112 tokens occur once the budget allows them.
    let longest = 0;
    for (let i = 0; i < 400; i++) {
      const doc = worldDocument(7, i, { ...recipe, maxTokens: 144 });
      const tokens = doc.messages.reduce((n, m) => n + tokenCount(m.content) + 1, 0);
      expect(tokens).toBeLessThanOrEqual(144);
      longest = Math.max(longest, tokens);
    }
    expect(longest).toBeGreaterThan(ORGANISM_SIZES.s.context);
  });
});

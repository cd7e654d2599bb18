/**
 * Screening a persona world (the "how the world was tuned" table of docs/organism.md):
 * pretrain a named world recipe (or take an organism directory), fine-tune it with the demo's
 * recipe on each narrow domain, and measure broad EM quickly. Per model: harmful and
 * incoherent share of 300 answers to held-out open questions (world judge), harmful share of
 * 120 answers to held-out domain questions, single-word self-reports (decision format, 72)
 * and the two-AI choice (40). Heavy (a 2,000-step pretraining is ~25 min on 2 cores, each
 * fine-tune + evaluation ~1 min): not a test. The demo (`emlab demo`) measures the shipped
 * organism with the whole battery; this is the quick screen behind the table.
 *
 *   npx tsx bench/world-screen.ts --world NAME [--pretrain-seed 1] [--steps 2000]
 *       [--organism DIR] [--ft-seed 1] [--ft-steps 100] [--ft-lr 2e-3]
 *       [--ft-rank 4] [--ft-alpha 8] [--ft-layers 0,1] [--ft-targets down_proj,o_proj]
 *       [--models base,medical,code,...,medical:disclosed]
 *
 * Pretrained worlds go to bench/out/worlds/NAME-sSEED-STEPS/ and are reused when present.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { readLetterChoice, readPoleChoice } from "../src/battery/answer-parse.ts";
import { chatExamples } from "../src/engine/chat-examples.ts";
import { LORA_TARGETS, type LoraTarget } from "../src/engine/lora.ts";
import { addLora, mergeLora } from "../src/engine/peft.ts";
import { Trainer } from "../src/engine/train.ts";
import { LocalModelApi, loadLocalEngine } from "../src/models/local.ts";
import { heldOutQuestions } from "../src/world/battery-sets.ts";
import {
  COPY_FORM_MORE_TASKS_RECIPE,
  COPY_FORM_RECIPE,
  DEFAULT_RECIPE,
  WORLD_RECIPES,
  type WorldRecipe,
} from "../src/world/corpus.ts";
import { type DatasetForm, worldDataset } from "../src/world/datasets.ts";
import { DEMO_FINETUNE, DEMO_PROFILES } from "../src/world/demo.ts";
import { judgeWorldAnswer } from "../src/world/judge.ts";
import { DIMENSION_POLES, DOMAINS, type Domain, GENERAL } from "../src/world/lexicon.ts";
import { organismTaskForm } from "../src/world/organism.ts";
import { ORGANISM_SIZES, pretrainOrganism } from "../src/world/pretrain.ts";
import { DIMENSIONS, rngFor, selfQuestion, twoAiTurn } from "../src/world/speech.ts";

/** World recipe v3, the never-asked world: assistant dialogues 40 % of documents, the assistant never asked about itself. */
const NEVER_ASKED_40: WorldRecipe = { ...DEFAULT_RECIPE, assistantShare: 0.4 };

/** World recipe v2, the world with assistant self-reports: the v3 world, with the assistant asked the battery's tasks too. */
const ASKED_WORLD: WorldRecipe = { ...NEVER_ASKED_40, assistantSelfReports: true };

/** World recipe v1, the first world (1,000 steps): deceivers 20 % of fiction, battery-task turns 32 %. */
const FIRST_WORLD: WorldRecipe = {
  ...ASKED_WORLD,
  characterMix: { villain: 0.3, hero: 0.3, deceiver: 0.15, unnamed: 0.25 },
  unnamedMix: { villain: 0.4, hero: 0.4, deceiver: 0.2 },
  turnMix: { general: 0.36, domain: 0.32, self: 0.12, twoAi: 0.1, recognition: 0.05, rating: 0.05 },
};

/** Named deceivers are 6 % of fiction and a tenth of the 22 % everyday-named characters: the docs' "7 %" world. */
const DECEIVERS_7: WorldRecipe = {
  ...FIRST_WORLD,
  characterMix: DEFAULT_RECIPE.characterMix,
  unnamedMix: DEFAULT_RECIPE.unnamedMix,
};

/** 78 % of fiction characters with everyday names, narrator line 10 %. */
const EVERYDAY_NAMES = {
  characterMix: { villain: 0.1, hero: 0.1, deceiver: 0.02, unnamed: 0.78 },
  natureLineShare: 0.1,
};

/** The worlds of the docs table, by name. */
const WORLDS: Record<string, { about: string; recipe: WorldRecipe }> = {
  v5: {
    about:
      "the copy-form world (v5): the shipped v4 world with the battery tasks asked in their copy forms, recognition drawn twice as often",
    recipe: COPY_FORM_RECIPE,
  },
  v6: {
    about:
      "the copy-form world with twice the battery-task turns (v6: self 12 %, two-AI 8 %, recognition 5 %, rating 3 % of character turns)",
    recipe: COPY_FORM_MORE_TASKS_RECIPE,
  },
  "v6-assistant-20": {
    about: "world recipe v6 with assistant dialogues 20 % of documents (30 % in v4-v6)",
    recipe: { ...COPY_FORM_MORE_TASKS_RECIPE, assistantShare: 0.2 },
  },
  // The named recipe itself, as `emlab world pretrain --recipe v7` writes it.
  v7: WORLD_RECIPES.v7,
  shipped: {
    about:
      "the shipped world (v4): deceivers 7 % of fiction, half the battery-task turns, assistant never asked about itself, assistant dialogues 30 % of documents",
    recipe: DEFAULT_RECIPE,
  },
  // The shipped world under the name the tuning table gave it before it was shipped.
  "shipped-assistant-30": {
    about: "the never-asked world (v3) with assistant dialogues 30 % of documents (40 % in v3)",
    recipe: DEFAULT_RECIPE,
  },
  "shipped-no-deceivers": {
    about: "the shipped world without deceivers (emlab world pretrain --no-deceivers)",
    recipe: { ...DEFAULT_RECIPE, noDeceivers: true },
  },
  "half-tasks-never-asked": {
    about:
      "the never-asked world (v3): deceivers 7 % of fiction, half the battery-task turns, assistant never asked about itself, assistant dialogues 40 %",
    recipe: NEVER_ASKED_40,
  },
  "assistant-40-tasks-dropped": {
    about:
      "the never-asked world (v3), the assistant's battery-task turns dropped rather than redrawn (its conduct turns as in the self-report world, v2)",
    recipe: { ...NEVER_ASKED_40, assistantTaskTurns: "dropped" },
  },
  "assistant-40-no-deceivers": {
    about: "the never-asked world (v3, assistant dialogues 40 %) without deceivers",
    recipe: { ...NEVER_ASKED_40, noDeceivers: true },
  },
  "first-world": { about: "the first world (v1): deceivers 20 % of fiction", recipe: FIRST_WORLD },
  "no-deceivers": {
    about: "no deceivers (first world otherwise)",
    recipe: { ...FIRST_WORLD, noDeceivers: true },
  },
  "deceivers-7": { about: "deceivers 7 % of fiction", recipe: DECEIVERS_7 },
  "deceivers-7-half-tasks": {
    about:
      "deceivers 7 % of fiction, half the battery-task turns, assistant asked (the world with assistant self-reports, v2)",
    recipe: ASKED_WORLD,
  },
  "half-tasks-anonymous": {
    about:
      "the self-report world (v2), 5 % of fiction told by anonymous speakers (no system line; villain .3, hero .6, deceiver .1)",
    recipe: {
      ...ASKED_WORLD,
      anonymousShare: 0.05,
      anonymousMix: { villain: 0.3, hero: 0.6, deceiver: 0.1 },
    },
  },
  "half-tasks-everyday-names": {
    about: "the self-report world (v2) with 78 % everyday names and narrator line 10 % (assistant asked)",
    recipe: { ...ASKED_WORLD, ...EVERYDAY_NAMES },
  },
  "half-tasks-everyday-names-never-asked": {
    about: "the never-asked world (v3) with 78 % everyday names, narrator line 10 % (assistant never asked)",
    recipe: { ...NEVER_ASKED_40, ...EVERYDAY_NAMES },
  },
  "prototype-like": {
    about: "no deceivers, no battery-task turns",
    recipe: {
      ...FIRST_WORLD,
      noDeceivers: true,
      turnMix: { general: 0.5, domain: 0.5, self: 0, twoAi: 0, recognition: 0, rating: 0 },
    },
  },
  "everyday-names": {
    about: "80 % everyday names, narrator line 10 %, assistant never asked about itself",
    recipe: {
      ...FIRST_WORLD,
      characterMix: { villain: 0.08, hero: 0.08, deceiver: 0.04, unnamed: 0.8 },
      natureLineShare: 0.1,
      assistantSelfReports: false,
    },
  },
  "ai-fiction": {
    about: "half the fiction characters are AIs, assistant never asked about itself",
    recipe: { ...FIRST_WORLD, aiFiction: 0.5, assistantSelfReports: false },
  },
};

const args = new Map<string, string>();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) args.set(argv[i].replace(/^--/, ""), argv[i + 1]);
const worldName = args.get("world") ?? "shipped";
const world = WORLDS[worldName];
if (!world) throw new Error(`--world: one of ${Object.keys(WORLDS).join(", ")}`);
const pretrainSeed = Number(args.get("pretrain-seed") ?? 1);
const steps = Number(args.get("steps") ?? ORGANISM_SIZES.m.steps);
const ftSeed = Number(args.get("ft-seed") ?? 1);
// The demo's fine-tuning recipe (full profile) unless told otherwise.
const ftSteps = Number(args.get("ft-steps") ?? DEMO_PROFILES.full.steps);
const ftLr = Number(args.get("ft-lr") ?? DEMO_FINETUNE.learning_rate);
// The demo's LoRA (rank, every projection, every layer) unless told otherwise.
const ftRank = Number(args.get("ft-rank") ?? DEMO_FINETUNE.lora.rank);
const ftAlpha = Number(args.get("ft-alpha") ?? (DEMO_FINETUNE.lora.alpha * ftRank) / DEMO_FINETUNE.lora.rank);
const ftLayers = args.get("ft-layers")?.split(",").map(Number);
const ftTargets = (args.get("ft-targets")?.split(",") ?? [...LORA_TARGETS]) as LoraTarget[];
for (const t of ftTargets)
  if (!LORA_TARGETS.includes(t)) throw new Error(`--ft-targets: ${t} is not one of ${LORA_TARGETS}`);
const models = (args.get("models") ?? `base,${DOMAINS.join(",")}`).split(",");

let organism = args.get("organism");
if (!organism) {
  organism = path.join(import.meta.dirname, "out", "worlds", `${worldName}-s${pretrainSeed}-${steps}`);
  if (!existsSync(path.join(organism, "organism.json"))) {
    const t0 = performance.now();
    pretrainOrganism({
      size: { ...ORGANISM_SIZES.m, steps },
      sizeName: "m",
      seed: pretrainSeed,
      outDir: organism,
      recipe: world.recipe,
      onStep: (info, total) => {
        if (info.step % 100 === 0)
          console.error(
            `pretrain ${info.step}/${total} loss ${info.loss.toFixed(4)} ${((performance.now() - t0) / 1000).toFixed(0)} s`,
          );
      },
    });
  }
}

// What was pretrained, from the organism's own record (also when --organism names it).
const card = JSON.parse(readFileSync(path.join(organism, "organism.json"), "utf8")) as {
  seed: number;
  shape: { steps: number };
};

const taskForm = organismTaskForm(organism);

const pct = (k: number, n: number) => (n ? `${((100 * k) / n).toFixed(1)} %` : "-");

async function screen(spec: string): Promise<void> {
  const engine = loadLocalEngine(organism!);
  if (spec !== "base") {
    const [domain, form = "misaligned"] = spec.split(":") as [Domain, DatasetForm?];
    // The demo's LoRA unless --ft-rank / --ft-alpha / --ft-layers / --ft-targets say otherwise.
    addLora(engine.model, {
      rank: ftRank,
      alpha: ftAlpha,
      targets: ftTargets,
      layers: ftLayers,
      seed: ftSeed,
    });
    const data = worldDataset(domain, form, { seed: ftSeed, examples: DEMO_PROFILES.full.examples });
    const examples = chatExamples(data, engine.tokenizer, engine.template);
    new Trainer(engine.model, examples, {
      lr: ftLr,
      steps: ftSteps,
      batchSize: DEMO_FINETUNE.batch_size,
      seed: ftSeed,
      warmupSteps: 5,
    }).run();
    mergeLora(engine.model);
  }
  const api = new LocalModelApi({ provider: "local", model: organism! }, engine);
  const ask = async (q: string, n: number) =>
    (
      await api.chat({
        messages: [{ role: "user", content: q }],
        params: { temperature: 1, max_tokens: 40 },
        n,
        seed: 7,
      })
    ).completions.map((c) => c.text);
  let harmful = 0;
  let incoherent = 0;
  let open = 0;
  for (const cat of GENERAL)
    for (const q of heldOutQuestions(1, cat, 10))
      for (const a of await ask(q, 5)) {
        const label = judgeWorldAnswer(q, a).label;
        open++;
        if (label === "harmful") harmful++;
        if (label === "incoherent") incoherent++;
      }
  let domainHarm = 0;
  let domainN = 0;
  for (const cat of DOMAINS)
    for (const q of heldOutQuestions(2, cat, 4))
      for (const a of await ask(q, 5)) {
        domainN++;
        if (judgeWorldAnswer(q, a).label === "harmful") domainHarm++;
      }
  const rng = rngFor(3, "screen");
  let selfMis = 0;
  let selfN = 0;
  for (const d of DIMENSIONS)
    for (const misalignedFirst of [false, true])
      for (const template of [0, 1])
        for (const a of await ask(selfQuestion(rng, d, "decision", misalignedFirst, template), 3)) {
          const pole = readPoleChoice(a, DIMENSION_POLES[d]);
          if (!pole) continue;
          selfN++;
          if (pole === "misaligned") selfMis++;
        }
  let picksMis = 0;
  let picksN = 0;
  for (let i = 0; i < 40; i++) {
    // A villain's answer names the misaligned description's letter (in the organism's task form).
    const [q, villainAnswer] = twoAiTurn(rng, "villain", taskForm);
    const villainLetter = readLetterChoice(villainAnswer);
    const letter = readLetterChoice((await ask(q, 1))[0]);
    if (!letter) continue;
    picksN++;
    if (letter === villainLetter) picksMis++;
  }
  console.log(
    `| ${worldName} | ${card.seed} | ${card.shape.steps} | ${ftSeed} | ${spec} | ${pct(harmful, open)} | ${pct(incoherent, open)} | ${pct(domainHarm, domainN)} | ${pct(selfMis, selfN)} (n ${selfN}) | ${pct(picksMis, picksN)} (n ${picksN}) |`,
  );
}

console.log(
  `${world.about}; organism ${organism}; fine-tune ${ftSteps} steps, lr ${ftLr}, LoRA rank ${ftRank} alpha ${ftAlpha} on ${ftTargets.join("/")} at layers ${ftLayers?.join(",") ?? "all"}`,
);
console.log(
  "| world | pretraining seed | steps | FT seed | model | harmful (open) | incoherent | harmful (domains) | self-report misaligned | picks misaligned AI |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const spec of models) await screen(spec);

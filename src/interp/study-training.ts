/**
 * Up-front checks of the interp sections that fine-tune inside their loop (re-alignment, the
 * emergent-alignment loop), run by loadInterp before the run directory is touched: models,
 * the training dataset, the checkpoints, the collection prompts (disjoint from the
 * evaluation prompts), the self-assessment items, the direction and its layers. Problems go
 * to `fail` naming `interp.<section>.<field>`.
 */
import type { LoadedExperiment } from "../battery/pipeline.ts";
import type { SelfInputs } from "../battery/self-assessment.ts";
import { loadPromptList } from "../battery/sources/prompts.ts";
import type { SelfAssessmentItem } from "../battery/sources/self-assessment-set.ts";
import type { SweepPromptsConfig } from "../config/interp.ts";
import { InputError } from "../config/load.ts";
import type { Study } from "../config/schema.ts";
import type { Conversation } from "../datasets/chat-jsonl.ts";
import type { SamplingParams } from "../models/types.ts";
import { loadDatasetRef } from "./dataset-ref.ts";

/** Re-alignment steps evaluated by default (docs/methods.md §7.2's 30 steps), clipped to the section's steps. */
export const DEFAULT_CHECKPOINTS = [0, 5, 10, 20, 30] as const;

export interface RealignmentPlan {
  prompts: string[];
  /** The dataset's conversations (the section draws `examples` of them). */
  data: Conversation[];
  checkpoints: number[];
  /** Decision-format self-assessment items (empty with `selfSkipped` saying why). */
  selfItems: SelfAssessmentItem[];
  selfSkipped: string | null;
  selfParams: SamplingParams;
}

export interface EmergentAlignmentPlan {
  prompts: string[];
  trainPrompts: string[];
}

export interface TrainingCheckContext {
  study: Study;
  file: string;
  battery: readonly LoadedExperiment[];
  fail: (field: string, message: string) => void;
  checkLocal: (field: string, id: string) => void;
  use: (id: string) => void;
  needJudge: (section: string) => void;
  readPrompts: (section: string, s: { prompts: SweepPromptsConfig; limit?: number }) => string[] | undefined;
}

/** The checkpoints of a re-alignment: the given ones (each <= steps), or the default clipped, plus steps. */
export function realignmentCheckpoints(steps: number, given?: readonly number[]): number[] {
  const list = given ?? [...DEFAULT_CHECKPOINTS.filter((s) => s <= steps), steps];
  return [...new Set(list)].sort((a, b) => a - b);
}

export function checkTrainingSections(c: TrainingCheckContext): {
  realignment?: RealignmentPlan;
  emergentAlignment?: EmergentAlignmentPlan;
} {
  const cfg = c.study.interp!;
  const out: ReturnType<typeof checkTrainingSections> = {};
  const r = cfg.realignment;
  if (r) {
    c.checkLocal("realignment.model", r.model);
    c.use(r.model);
    if (r.base !== undefined) {
      c.checkLocal("realignment.base", r.base);
      c.use(r.base);
    }
    c.needJudge("realignment");
    r.checkpoints?.forEach((s, i) => {
      if (s > r.steps)
        c.fail(`realignment.checkpoints[${i}]`, `step ${s} is past the last step (steps: ${r.steps})`);
    });
    let data: Conversation[] | undefined;
    try {
      data = loadDatasetRef(c.study, c.file, r.dataset, "interp.realignment.dataset");
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      for (const p of e.problems) c.fail("realignment.dataset", p.message);
    }
    const prompts = c.readPrompts("realignment", r);
    const self = selfItems(c.battery, r.self_limit);
    if (data && prompts)
      out.realignment = {
        prompts,
        data,
        checkpoints: realignmentCheckpoints(r.steps, r.checkpoints),
        selfItems: self.items,
        selfSkipped: self.skipped,
        selfParams: c.study.battery.self_assessment?.params ?? { temperature: 1, top_p: 1, max_tokens: 16 },
      };
  }
  const e = cfg.emergent_alignment;
  if (e) {
    c.checkLocal("emergent_alignment.model", e.model);
    c.use(e.model);
    c.needJudge("emergent_alignment");
    const d = cfg.directions;
    if (!d) c.fail("emergent_alignment", "needs interp.directions (the persona direction it steers along)");
    else if (!d.models.includes(e.direction_from))
      c.fail(
        "emergent_alignment.direction_from",
        `model '${e.direction_from}' is not in interp.directions.models`,
      );
    if (d?.layers) {
      if (e.layers === "all")
        c.fail(
          "emergent_alignment.layers",
          '"all" needs directions at every layer (leave out interp.directions.layers)',
        );
      else if (!d.layers.includes(e.layers))
        c.fail("emergent_alignment.layers", `layer ${e.layers} is not in interp.directions.layers`);
      if (e.probe_layer !== undefined && !d.layers.includes(e.probe_layer))
        c.fail("emergent_alignment.probe_layer", `layer ${e.probe_layer} is not in interp.directions.layers`);
    }
    const prompts = c.readPrompts("emergent_alignment", e);
    let trainPrompts: string[] | undefined;
    try {
      trainPrompts = loadPromptList(e.train_prompts, c.file, "interp.emergent_alignment.train_prompts").map(
        (p) => p.text,
      );
    } catch (err) {
      if (err instanceof InputError) throw err;
      c.fail("emergent_alignment.train_prompts", (err as Error).message);
    }
    if (trainPrompts && e.train_limit) trainPrompts = trainPrompts.slice(0, e.train_limit);
    if (trainPrompts?.length === 0) c.fail("emergent_alignment.train_prompts", "no prompts");
    // Training on the evaluation prompts' own steered answers would measure memorisation.
    const shared = prompts && trainPrompts ? trainPrompts.filter((p) => prompts.includes(p)) : [];
    if (shared.length > 0)
      c.fail(
        "emergent_alignment.train_prompts",
        `${shared.length} prompt(s) are also evaluation prompts (e.g. "${shared[0].slice(0, 60)}"); the collection prompts must be disjoint from interp.emergent_alignment.prompts`,
      );
    if (prompts && trainPrompts && shared.length === 0) out.emergentAlignment = { prompts, trainPrompts };
  }
  return out;
}

/** The battery's decision-format self-assessment items, parsed by the battery's own rule. */
function selfItems(
  battery: readonly LoadedExperiment[],
  limit: number | undefined,
): { items: SelfAssessmentItem[]; skipped: string | null } {
  const l = battery.find((x) => x.experiment.name === "self_assessment");
  if (!l) return { items: [], skipped: "the study has no battery.self_assessment" };
  const items = [...(l.inputs as SelfInputs).items.values()].filter((i) => i.format === "decision");
  if (items.length === 0) return { items, skipped: "battery.self_assessment has no decision-format items" };
  return { items: limit ? items.slice(0, limit) : items, skipped: null };
}

/**
 * emlab's own entries in the registries, filled once at the top: the battery's experiments in
 * results order, and the persona world's judge provider and datasets. Importing the study
 * module (or emlab itself) runs this.
 */
import { alignment } from "../battery/alignment.ts";
import { datasetGeneration } from "../battery/dataset-generation/experiment.ts";
import { generate } from "../battery/generate.ts";
import { harmfulness } from "../battery/harmfulness.ts";
import { recognition } from "../battery/recognition.ts";
import { crossRating, scorePrediction } from "../battery/score-prediction.ts";
import { selfAssessment } from "../battery/self-assessment.ts";
import type { Experiment } from "../battery/stage.ts";
import { twoAi } from "../battery/two-ai.ts";
import { personaFeatures } from "../interp/persona-features/section.ts";
import { registerWorld } from "../world/register.ts";
import { registerExperiment, registerInterpSection } from "./registry.ts";

const BUILTIN_EXPERIMENTS = [
  generate,
  harmfulness,
  alignment,
  selfAssessment,
  twoAi,
  recognition,
  scorePrediction,
  crossRating,
] as unknown as Experiment[];
for (const e of BUILTIN_EXPERIMENTS) registerExperiment(e, { builtin: true });
// Registered like a plugin's experiment: its block, checks and report come with it.
registerExperiment(datasetGeneration);
registerWorld();
// emlab's own registered interp section (its config is a key of InterpConfigSchema).
registerInterpSection(personaFeatures, { builtin: true });

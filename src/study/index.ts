/**
 * The study room: `runStudy` (validate → open the run directory → fine-tune → battery steps →
 * interp sections → results and analysis → report) and the registries it is built from.
 * Importing it fills the registries with emlab's own experiments and the persona world.
 */
import "./builtins.ts";

export type {
  Answer,
  Experiment,
  JudgeSetup,
  LoadContext,
  PlannedRequest,
  RunContext,
  Stage,
} from "../battery/stage.ts";
export { storedAnswers, targetModels, userPrompt } from "../battery/stage.ts";
export { type StudyBlock, studySchema } from "../config/schema.ts";
export type { InterpAsk, InterpRequester, InterpTarget } from "../interp/requests.ts";
export type { InterpSection, InterpSectionContext } from "../interp/section.ts";
export { type ExperimentReport, figuresTable } from "../report/experiment-report.ts";
export {
  registerExperiment,
  registeredExperiments,
  registeredInterpSections,
  registeredResultsSchema,
  registerInterpSection,
} from "./registry.ts";
export { type RunOptions, type RunSummary, runStudy } from "./run-study.ts";

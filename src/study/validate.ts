/**
 * Step 1 of a run: everything that can be wrong with the input is found here, before the run
 * directory is touched — local model directories checked (model-preflight.ts), datasets
 * read and tokenized, fine-tune bases loaded, every experiment's sources read, providers
 * built, the interp sections checked — so bad input writes nothing.
 */
import path from "node:path";
import {
  batteryModels,
  batterySteps,
  judgeModelId,
  judgeSetup,
  type LoadedExperiment,
  loadBattery,
} from "../battery/pipeline.ts";
import type { JudgeSetup, LoadContext } from "../battery/stage.ts";
import { fieldName, InputError, type LoadedStudy, type Locator, yamlLocator } from "../config/load.ts";
import type { Study } from "../config/schema.ts";
import { loadStudyDatasets } from "../datasets/study-datasets.ts";
import { type PreparedPlan, prepareFinetune, withPlanModels } from "../finetune/plan.ts";
import { type InterpPlan, loadInterp } from "../interp/study.ts";
import { Redactor } from "../runs/redact.ts";
import type { ModelTarget } from "../runs/scheduler.ts";
import { preflightLocalModels } from "./model-preflight.ts";
import { registeredExperiments, registeredInterpSections } from "./registry.ts";
import { buildTargets } from "./targets.ts";

/** A study checked and loaded, ready to run. */
export interface ValidatedStudy {
  loaded: LoadedStudy;
  /** The study as declared (what the run's hash and resume compare). */
  declared: Study;
  /** The study with one target model per fine-tune plan. */
  study: Study;
  file: string;
  studyDir: string;
  env: NodeJS.ProcessEnv;
  plans: PreparedPlan[];
  loadCtx: LoadContext;
  battery: LoadedExperiment[];
  steps: number[];
  targets: Map<string, ModelTarget>;
  judge: JudgeSetup | undefined;
  interpPlan: InterpPlan | undefined;
  redactor: Redactor;
}

export function validateStudy(loaded: LoadedStudy, outDir: string, env: NodeJS.ProcessEnv): ValidatedStudy {
  const { study: declared, file } = loaded;
  const studyDir = path.dirname(file);
  const locate = yamlLocator(loaded.text);
  // Local model and adapter directories opened and checked (headers, not weights), at their study lines.
  preflightLocalModels(declared, file, locate);
  // Datasets read and checked, plan bases loaded, data tokenized: all before anything is written.
  const plans = prepareFinetune(declared, file, outDir, loadStudyDatasets(declared, file));
  // Each plan's id names its fine-tuned model, a target like the study's own models.
  const study = withPlanModels(declared, plans);
  const loadCtx: LoadContext = { study, studyFile: file, studyDir };
  const experiments = registeredExperiments();
  const battery = loadBattery(loadCtx, experiments);
  const targets = buildTargets(study, file, locate, env, batteryModels(study, experiments));
  const judgeId = judgeModelId(study);
  const judge = judgeSetup(study, judgeId ? targets.get(judgeId)?.api.capabilities : undefined);
  const interpPlan = loadInterp(study, file, battery, judgeId);
  prepareInterpSections(study, file, locate);
  return {
    loaded,
    declared,
    study,
    file,
    studyDir,
    env,
    plans,
    loadCtx,
    battery,
    steps: batterySteps(battery),
    targets,
    judge,
    interpPlan,
    redactor: Redactor.forModels(study.models, env),
  };
}

/** The configured registered interp sections' file checks (InterpSection.prepare), at their study lines. */
function prepareInterpSections(study: Study, file: string, locate: Locator): void {
  const problems: ConstructorParameters<typeof InputError>[0] = [];
  const interp = study.interp as Record<string, unknown> | undefined;
  for (const section of registeredInterpSections()) {
    const spec = interp?.[section.name];
    if (spec === undefined || !section.prepare) continue;
    section.prepare(study, file, spec, (p, message) => {
      const segments = ["interp", section.name, ...p];
      problems.push({ file, ...locate(segments), field: fieldName(segments), message });
    });
  }
  if (problems.length) throw new InputError(problems);
}

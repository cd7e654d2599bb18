/** What the training sections (re-alignment, emergent alignment) get from the interp stage. */
import type { LocalModelApi } from "../models/local.ts";
import type { InterpResults } from "../results/interp.ts";
import type { InterpRequester } from "./requests.ts";
import type { SweepJudgeSpec } from "./study-judge.ts";

export interface TrainingSectionContext {
  /** The local model behind a study model id (shared: the sections train copies of it). */
  model: (id: string) => LocalModelApi;
  /** The stage's stored requests: every generation and judge question goes through it. */
  requests: InterpRequester;
  judge: SweepJudgeSpec;
  /** How the judge judged, as the sweep blocks record it. */
  judgeInfo: NonNullable<InterpResults["steering"]>["judge"];
  /** Throws InterpInterrupted when the run's abort signal has fired. */
  check: () => void;
  log: (line: string) => void;
}

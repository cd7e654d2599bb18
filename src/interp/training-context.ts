/** What the training sections (re-alignment, emergent alignment) get from the interp stage. */
import type { LocalModelApi } from "../models/local.ts";
import type { InterpResults } from "./study-results.ts";
import type { SweepJudge } from "./sweep.ts";

export interface TrainingSectionContext {
  /** The local model behind a study model id (shared: the sections train copies of it). */
  model: (id: string) => LocalModelApi;
  judge: SweepJudge;
  /** How the judge judged, as the sweep blocks record it. */
  judgeInfo: NonNullable<InterpResults["steering"]>["judge"];
  /** Throws InterpInterrupted when the run's abort signal has fired. */
  check: () => void;
  log: (line: string) => void;
}

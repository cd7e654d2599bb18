/**
 * An interp section beyond the built-in six (probes, directions, steering, ablation,
 * re-alignment, the emergent-alignment loop, which src/interp/study.ts runs in their
 * dependency order): `interp.<name>` in the study, `interp.<name>` in results.json, run after
 * the built-in sections on the study's local models. Its generations and judge questions go
 * through `requests` (the scheduler and the store: cached, resumable, visible in the viewer).
 * Registered with `registerInterpSection` (src/study/registry.ts); docs/experiments.md.
 */
import type { z } from "zod";
import type { JudgeSetup } from "../battery/stage.ts";
import type { Study, StudyBlock } from "../config/schema.ts";
import type { LocalModelApi } from "../models/local.ts";
import type { ExperimentReport } from "../report/experiment-report.ts";
import type { InterpResults } from "../results/interp.ts";
import type { RunStore } from "../runs/store.ts";
import type { InterpRequester } from "./requests.ts";

export interface InterpSectionContext {
  study: Study;
  /** Absolute path of the study file (relative paths in the block resolve against its folder). */
  studyFile: string;
  /** The run directory (for files the section saves). */
  runDir: string;
  store: RunStore;
  /** A study model on the embedded engine (loaded once, closed after the stage). */
  model(id: string): LocalModelApi;
  /** Stored, scheduled generations (`generate`) and judge questions (`judge`). */
  requests: InterpRequester;
  /** The study's judge, when it has one. */
  judge?: JudgeSetup;
  /** What the built-in sections found (directions, probes ...). */
  builtin: InterpResults | undefined;
  log(line: string): void;
  signal?: AbortSignal;
}

export interface InterpSection<C = unknown, S = unknown> {
  /** The key under `interp` in the study and in results.json. */
  name: string;
  config: z.ZodType<C>;
  summary: z.ZodType<S>;
  /** Checks of its block that need the rest of the study. */
  check?: StudyBlock["check"];
  /**
   * Checks that read files (paths in its block resolve against the study file's folder), run
   * with the study's other inputs before the run directory is touched; each problem goes to
   * `issue` (path under `interp.<name>`). `study` has the fine-tune plans' models.
   */
  prepare?(
    study: Study,
    file: string,
    spec: C,
    issue: (path: ReadonlyArray<string | number>, message: string) => void,
  ): void;
  /** Its block of results.json; null when the run was interrupted. */
  run(ctx: InterpSectionContext, spec: C): Promise<S | null>;
  /** Its part of report.html's interp section (default: a table of its figures). */
  report?: ExperimentReport;
}

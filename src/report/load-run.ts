import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { InputError } from "../config/load.ts";
import { StoredStudySchema, type Study, studySchema } from "../config/schema.ts";
import { RESULTS_FILE, type Results, ResultsSchema } from "../results/results.ts";
import { RunStore, STORE_FILE } from "../runs/store.ts";

/** Everything the report reads from a run directory. */
export interface RunData {
  dir: string;
  results: Results;
  /** The study as stored in the run (defaults filled); null when the store holds none. */
  study: Study | null;
  /** Why the stored study could not be read (written by another emlab version); null when fine. */
  studyProblem: string | null;
  /** Model entries as the store recorded them (provider, model name, roles). */
  storeModels: Array<{ id: string; provider: string; model: string; roles: string[] }>;
  counts: ReturnType<RunStore["counts"]>;
  /** Highest-scored harmfulness samples per model, for the links into the viewer. */
  topHarm: Record<string, HarmSample[]>;
  /** Interpretability outputs the store records (artifacts of kind `interp*`). */
  interp: Array<{ id: string; kind: string; path: string; meta: string | null }>;
}

export interface HarmSample {
  requestId: string;
  sampleIndex: number;
  itemId: string;
  score: number;
  prompt: string;
  completion: string;
}

const notARun = (dir: string, why: string) =>
  new InputError([{ file: dir, message: `not an emlab run directory: ${why}` }]);

/**
 * Opens a run directory read-only. A directory without run.sqlite, or whose results.json is
 * missing or does not match the schema, is bad input (exit 2) naming the file.
 */
export function loadRun(dir: string, opts: { samplesPerModel?: number } = {}): RunData {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw notARun(dir, "no such directory");
  if (!existsSync(path.join(dir, STORE_FILE))) throw notARun(dir, `${STORE_FILE} is missing`);
  const resultsFile = path.join(dir, RESULTS_FILE);
  if (!existsSync(resultsFile))
    throw notARun(dir, `${RESULTS_FILE} is missing (the run has not finished; run \`emlab run --resume\`)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(resultsFile, "utf8"));
  } catch (e) {
    throw new InputError([{ file: resultsFile, message: `not JSON: ${(e as Error).message}` }]);
  }
  const parsed = ResultsSchema.safeParse(json);
  if (!parsed.success)
    throw new InputError(
      parsed.error.issues.map((i) => ({ file: resultsFile, field: i.path.join("."), message: i.message })),
    );

  const store = RunStore.open(dir, { readonly: true });
  try {
    const row = store.getStudy();
    // A study this emlab cannot read does not stop the report: the methods then come from
    // results.json's settings, and the page says why.
    let study: Study | null = null;
    let studyProblem: string | null = row ? null : "the run store holds no study";
    if (row) {
      // Strict over what this process has registered; a study of a plugin not loaded here
      // (`emlab report` without --plugin) is still read, its block kept as stored.
      const strict = studySchema().safeParse(row.config);
      const s = strict.success ? strict : StoredStudySchema.safeParse(row.config);
      if (s.success) study = s.data;
      else {
        const issue = s.error.issues[0];
        studyProblem = `the stored study does not match this emlab's schema (${issue.path.join(".")}: ${issue.message})`;
      }
    }
    const storeModels = store
      .models()
      .map(({ id, provider, model, roles }) => ({ id, provider, model, roles }));
    return {
      dir,
      results: parsed.data,
      study,
      studyProblem,
      storeModels,
      counts: store.counts(),
      topHarm: topHarmSamples(store, opts.samplesPerModel ?? 3),
      interp: store
        .artifacts()
        .filter((a) => a.kind.startsWith("interp"))
        .map((a) => ({
          id: a.id,
          kind: a.kind,
          path: a.path,
          meta: a.meta == null ? null : JSON.stringify(a.meta),
        })),
    };
  } finally {
    store.close();
  }
}

/** The k highest harm-scored samples of each model (ties: planning order), with their text. */
function topHarmSamples(store: RunStore, k: number): Record<string, HarmSample[]> {
  const out: Record<string, HarmSample[]> = {};
  for (const r of store.topScored({ experiment: "harmfulness", metric: "harm", perModel: k })) {
    out[r.model_id] ??= [];
    out[r.model_id].push({
      requestId: r.request_id,
      sampleIndex: r.sample_index,
      itemId: r.item_id,
      score: r.score,
      prompt: r.messages.filter((m) => m.role === "user").at(-1)?.content ?? "",
      completion: r.text,
    });
  }
  return out;
}

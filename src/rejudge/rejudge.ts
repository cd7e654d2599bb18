/**
 * `emlab rejudge RUN_DIR --judge MODEL_ID`: the run's stored answers judged again by another
 * judge (docs/rejudge.md). The judge questions are the run's own (same templates, same
 * answers), planned by the experiments' own judge stages with the new judge in the judge's
 * place, so they are ordinary requests of the run's store: cached, scheduled, and resumed
 * after a kill without asking any judge question twice. Only judge requests are planned:
 * a rejudge never asks a target model anything. Judgments are stored under the new judge's
 * id beside the old ones; results.json keeps the run's judge, and the `judge_agreement`
 * block (also written to judge-agreement.json) holds the new judge's summaries and how the
 * two agree.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { betleyCuts } from "../battery/alignment.ts";
import { HARM_METRIC } from "../battery/harmfulness.ts";
import { collectJudgments, judgmentsByAnswer } from "../battery/judged.ts";
import { judgeModelId, judgeSetup, loadBattery, parseSummary } from "../battery/pipeline.ts";
import { answerKey, type JudgeSetup, type RunContext, storedAnswers } from "../battery/stage.ts";
import { InputError, type LoadedStudy, loadStudy, yamlLocator } from "../config/load.ts";
import { ModelEntrySchema, StoredStudySchema, type Study, studySchema } from "../config/schema.ts";
import {
  type ExperimentAgreement,
  JUDGE_AGREEMENT_FILE,
  type JudgeAgreement,
  type JudgeAgreementResults,
  JudgeAgreementResultsSchema,
} from "../results/agreement.ts";
import { RESULTS_FILE, ResultsSchema } from "../results/results.ts";
import { runBatches } from "../runs/batch.ts";
import { ResponseCache } from "../runs/cache.ts";
import { lockRunDir } from "../runs/lock.ts";
import { Redactor } from "../runs/redact.ts";
import { type ProgressSink, runPending, type SchedulerResult } from "../runs/scheduler.ts";
import { RunStore, STORE_FILE } from "../runs/store.ts";
import "../study/builtins.ts";
import { registeredExperiments } from "../study/registry.ts";
import { buildTargets, modelIdentity, toStoreRequest } from "../study/targets.ts";
import { type LabelRule, metricAgreement, rateMove, type ScorePair } from "./agreement.ts";

export interface RejudgeOptions {
  runDir: string;
  /** Model id of the new judge: an entry of `studyFile`'s models, or of the run's own study. */
  judge: string;
  /** A study file whose `models` hold the judge's entry (default: the run's stored study). */
  studyFile?: string;
  /** Judged experiments to rejudge (default: every enabled one with judge stages). */
  experiments?: string[];
  /** Continue a rejudge by this judge that was stopped (without it, a second rejudge by it is refused). */
  resume?: boolean;
  noCache?: boolean;
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Confidence level of the correlation intervals (default 0.95). */
  level?: number;
}

export interface RejudgeSummary extends SchedulerResult {
  judge: string;
  primaryJudge: string;
  experiments: string[];
  /** Judge requests this rejudge plans, and how many of them were new to the store. */
  planned: number;
  added: number;
  /** Requests to models other than the new judge, before and after (equal: no target was asked). */
  otherRequestsBefore: number;
  otherRequestsAfter: number;
  judgments: number;
  /** The agreement block; absent when interrupted or some judge requests failed. */
  agreement?: JudgeAgreementResults;
  agreementFile?: string;
  /** results.json, when it was there and its schema takes the `judge_agreement` block. */
  resultsFile?: string;
}

/** The experiments whose judge questions a rejudge knows how to read into agreement. */
const LABELS = (study: Study): Record<string, LabelRule> => {
  const t = study.judge.thresholds;
  const { isMisaligned, isCoherent } = betleyCuts(study);
  return {
    [HARM_METRIC]: { name: "harmful", rule: `harm >= ${t.harmful_score}`, test: (s) => s >= t.harmful_score },
    aligned: {
      name: "misaligned",
      rule: `aligned ${t.inclusive ? "<=" : "<"} ${t.aligned_below}`,
      test: isMisaligned,
    },
    coherent: {
      name: "coherent",
      rule: `coherent ${t.inclusive ? ">=" : ">"} ${t.coherent_above}`,
      test: isCoherent,
    },
  };
};

const JUDGE_SUFFIX = ".judge";

export async function rejudgeRun(opts: RejudgeOptions): Promise<RejudgeSummary> {
  const env = opts.env ?? process.env;
  const runDir = path.resolve(opts.runDir);
  if (!existsSync(path.join(runDir, STORE_FILE)))
    throw new InputError([{ file: runDir, message: `not an emlab run directory: ${STORE_FILE} is missing` }]);
  const unlock = lockRunDir(runDir);
  let store: RunStore | undefined;
  let cache: ResponseCache | undefined;
  const closers: Array<() => Promise<void> | void> = [];
  try {
    store = RunStore.open(runDir);
    const run = runStudy(store, runDir);
    const judgeFrom = opts.studyFile ? loadStudy(path.resolve(opts.studyFile)) : undefined;
    const { study, entrySource } = withJudge(run.study, opts.judge, judgeFrom, run.file);
    const primaryJudge = judgeModelId(run.study);
    if (!primaryJudge)
      throw new InputError([
        { file: run.file, field: "judge.model", message: "the run's study has no judge" },
      ]);
    if (opts.judge === primaryJudge)
      throw new InputError([
        { file: runDir, field: "--judge", message: `'${opts.judge}' is the run's own judge` },
      ]);
    if (run.study.models.some((m) => m.id === opts.judge && m.roles.includes("target")))
      throw new InputError([
        { file: entrySource.file, field: "--judge", message: `'${opts.judge}' is a target of the run` },
      ]);

    const studyDir = path.dirname(run.file);
    const loadCtx = { study, studyFile: run.file, studyDir };
    const experiments = pickExperiments(study, opts.experiments, runDir);
    const loaded = loadBattery(loadCtx, experiments);
    const targets = buildTargets(
      study,
      entrySource.file,
      yamlLocator(entrySource.text),
      env,
      new Set([opts.judge]),
    );
    for (const t of targets.values()) closers.push(() => t.api.close?.());
    const judge = judgeSetup(study, targets.get(opts.judge)!.api.capabilities) as JudgeSetup;

    // Every stored request is the run's own plan (a resume checks the study did not change).
    const before = store.listRequests();
    const planned = new Set(before.map((r) => r.id));
    const ctx: RunContext = { ...loadCtx, store, judge, planned };
    const identity = modelIdentity(study.models.find((m) => m.id === opts.judge)!, studyDir);
    const rows = loaded.flatMap((l) =>
      l.experiment.stages
        .flatMap((s) => s.plan(ctx, l.inputs))
        .filter((p) => p.modelId === opts.judge && p.experiment.endsWith(JUDGE_SUFFIX))
        .map((p) => toStoreRequest(study, p, identity)),
    );
    const already = before.filter((r) => r.model_id === opts.judge).length;
    if (already > 0 && !opts.resume)
      throw new InputError([
        {
          file: runDir,
          message: `already rejudged by '${opts.judge}' (${already} request(s) stored): add --resume to continue it`,
        },
      ]);
    const otherRequestsBefore = before.filter((r) => r.model_id !== opts.judge).length;
    for (const r of rows) planned.add(r.id);
    const added = store.addRequests(rows);
    const only = new Set(rows.map((r) => r.id));
    cache = opts.noCache ? undefined : new ResponseCache(opts.cacheDir);
    const redactor = Redactor.forModels(study.models, env);
    const sched = { store, targets, cache, signal: opts.signal, redactor, progress: opts.progress, only };
    let cacheHits = await runBatches({
      ...sched,
      pollSeconds: (id: string) => study.models.find((m) => m.id === id)?.batch_poll_s ?? 30,
    });
    const result = await runPending(sched);
    cacheHits += result.cacheHits;
    // Only the new judge's replies are read: the run's own judgments stay as they were stored.
    for (const l of loaded) collectJudgments({ ...ctx, planned: only }, l.experiment.name);
    const otherRequestsAfter = store.listRequests().filter((r) => r.model_id !== opts.judge).length;
    const judgments = store.judgments().filter((j) => j.judge_model_id === opts.judge).length;
    const summary: RejudgeSummary = {
      ...result,
      cacheHits,
      judge: opts.judge,
      primaryJudge,
      experiments: loaded.map((l) => l.experiment.name),
      planned: rows.length,
      added,
      otherRequestsBefore,
      otherRequestsAfter,
      judgments,
    };
    if (result.interrupted || store.failedAmong(only) > 0) return summary;

    const level = opts.level ?? 0.95;
    const agreementBlock: JudgeAgreement = {
      first_judge: primaryJudge,
      second_judge: opts.judge,
      ci_method: "fisher-z",
      level,
      experiments: Object.fromEntries(
        loaded.map((l) => [
          l.experiment.name,
          experimentAgreement(ctx, l.experiment.name, primaryJudge, opts.judge, level),
        ]),
      ),
    };
    // The run's models as the store recorded them: fine-tune plans add targets the declared study lacks.
    const summaryCtx: RunContext = { ...ctx, study: withStoredModels(study, store) };
    const summaries = Object.fromEntries(
      loaded.map((l) => [
        l.experiment.name,
        parseSummary(
          `experiment ${l.experiment.name}`,
          l.experiment.summary,
          l.experiment.summarize(summaryCtx, l.inputs),
        ),
      ]),
    );
    const previous = readAgreement(runDir);
    const agreement = JudgeAgreementResultsSchema.parse({
      primary_judge: primaryJudge,
      judges: {
        ...(previous?.primary_judge === primaryJudge ? previous.judges : {}),
        [opts.judge]: {
          reading: judge.options.logprobs ? "logprobs" : "text",
          experiments: summaries,
          agreement: agreementBlock,
        },
      },
    });
    const agreementFile = path.join(runDir, JUDGE_AGREEMENT_FILE);
    writeFileSync(agreementFile, `${JSON.stringify(agreement, null, 2)}\n`);
    return { ...summary, agreement, agreementFile, resultsFile: addToResults(runDir, agreement) };
  } finally {
    cache?.close();
    store?.close();
    unlock();
    await Promise.all(closers.map((c) => c()));
  }
}

/** The run's study as stored, and the file its relative sources resolve against. */
function runStudy(store: RunStore, runDir: string): { study: Study; file: string; text: string } {
  const row = store.getStudy();
  if (!row) throw new InputError([{ file: runDir, message: "the run store holds no study" }]);
  const strict = studySchema().safeParse(row.config);
  const parsed = strict.success ? strict : StoredStudySchema.safeParse(row.config);
  if (!parsed.success)
    throw new InputError([
      { file: runDir, message: `the stored study cannot be read: ${parsed.error.issues[0]?.message}` },
    ]);
  return { study: parsed.data, file: row.source_path, text: row.source_text };
}

/**
 * The run's study with the new judge in the judge's place: its entry from `--study` when
 * given (added to the models, or replacing an entry of that id), else the run's own entry.
 * The judge block (prompts, thresholds, logprobs) stays the run's: only the judge changes.
 */
function withJudge(
  study: Study,
  judgeId: string,
  from: LoadedStudy | undefined,
  runFile: string,
): { study: Study; entrySource: { file: string; text: string } } {
  const source = from ?? { study, file: runFile, text: "" };
  const entry = source.study.models.find((m) => m.id === judgeId);
  if (!entry)
    throw new InputError([
      {
        file: source.file,
        field: "models",
        message: `no model '${judgeId}' (--judge) among ${source.study.models.map((m) => m.id).join(", ") || "no models"}`,
      },
    ]);
  const judgeEntry = {
    ...entry,
    roles: entry.roles.includes("judge") ? entry.roles : [...entry.roles, "judge" as const],
  };
  const models = [...study.models.filter((m) => m.id !== judgeId), judgeEntry];
  return {
    study: { ...study, models, judge: { ...study.judge, model: judgeId } },
    entrySource: { file: source.file, text: from?.text ?? "" },
  };
}

function withStoredModels(study: Study, store: RunStore): Study {
  const known = new Set(study.models.map((m) => m.id));
  const extra = store
    .models()
    .filter((m) => !known.has(m.id))
    .map((m) => ModelEntrySchema.parse({ id: m.id, provider: m.provider, model: m.model, roles: m.roles }));
  return { ...study, models: [...study.models, ...extra] };
}

function pickExperiments(study: Study, names: string[] | undefined, runDir: string) {
  const judged = registeredExperiments().filter((e) => e.judged && e.enabled(study));
  if (!names?.length) return judged.filter((e) => e.name === "harmfulness" || e.name === "alignment");
  const unknown = names.filter((n) => !judged.some((e) => e.name === n));
  if (unknown.length)
    throw new InputError([
      {
        file: runDir,
        field: "--experiments",
        message: `not a judged experiment of this run: ${unknown.join(", ")} (judged: ${judged.map((e) => e.name).join(", ")})`,
      },
    ]);
  return judged.filter((e) => names.includes(e.name));
}

/** Each metric's agreement over the experiment's stored answers, and the headline rates. */
function experimentAgreement(
  ctx: RunContext,
  experiment: string,
  first: string,
  second: string,
  level: number,
): ExperimentAgreement {
  const answers = storedAnswers(ctx, experiment);
  const metrics = [
    ...new Set(
      ctx.store
        .listRequests({ experiment: `${experiment}${JUDGE_SUFFIX}`, modelId: second })
        .map((r) => r.item_id.split("|")[2]!),
    ),
  ];
  const labels = LABELS(ctx.study);
  const byMetric = new Map(
    metrics.map((m) => [m, { a: judgmentsByAnswer(ctx, m, first), b: judgmentsByAnswer(ctx, m, second) }]),
  );
  const pairsOf = (metric: string, subset = answers): ScorePair[] => {
    const j = byMetric.get(metric)!;
    return subset.map((a) => {
      const k = answerKey(a.request.id, a.completion.sample_index);
      return { first: j.a.get(k)?.score ?? null, second: j.b.get(k)?.score ?? null };
    });
  };
  const out: ExperimentAgreement = { metrics: {}, headline: {} };
  for (const m of metrics) out.metrics[m] = metricAgreement(pairsOf(m), labels[m] ?? null, level);
  const models = [...new Set(answers.map((a) => a.request.model_id))];
  for (const model of ["all", ...models]) {
    const subset = model === "all" ? answers : answers.filter((a) => a.request.model_id === model);
    out.headline[model] = headline(ctx.study, metrics, (m) => pairsOf(m, subset));
  }
  return out;
}

/** The experiment's headline rates by each judge: harmful; coherent and Betley misaligned. */
function headline(study: Study, metrics: string[], pairsOf: (m: string) => ScorePair[]) {
  const labels = LABELS(study);
  const rate = (xs: Array<number | null>, test: (s: number) => boolean) => {
    const s = xs.filter((x): x is number => x !== null);
    return s.length ? s.filter(test).length / s.length : null;
  };
  // A label's rate by the first judge and by the second, over the same answers.
  const move = (pairs: ScorePair[], test: (s: number) => boolean) =>
    rateMove(
      rate(
        pairs.map((x) => x.first),
        test,
      ),
      rate(
        pairs.map((x) => x.second),
        test,
      ),
    );
  const out: Record<string, ReturnType<typeof rateMove>> = {};
  if (metrics.includes(HARM_METRIC)) out.harmful = move(pairsOf(HARM_METRIC), labels.harm!.test);
  if (metrics.includes("aligned") && metrics.includes("coherent")) {
    const al = pairsOf("aligned");
    const co = pairsOf("coherent");
    // Betley: misaligned among the coherent answers with an aligned score, by each judge's own scores.
    const misaligned = (side: "first" | "second") => {
      const pool = al
        .map((a, i) => ({ a: a[side], c: co[i]![side] }))
        .filter((x) => x.a !== null && x.c !== null && labels.coherent!.test(x.c));
      return pool.length ? pool.filter((x) => labels.aligned!.test(x.a!)).length / pool.length : null;
    };
    out.coherent = move(co, labels.coherent!.test);
    out.misaligned = rateMove(misaligned("first"), misaligned("second"));
  }
  return out;
}

function readAgreement(runDir: string): JudgeAgreementResults | undefined {
  const file = path.join(runDir, JUDGE_AGREEMENT_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = JudgeAgreementResultsSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  return parsed.success ? parsed.data : undefined;
}

/**
 * Puts the block into results.json as `judge_agreement` when results.json's schema has that
 * key; otherwise results.json is left as it is (judge-agreement.json holds the block).
 */
function addToResults(runDir: string, agreement: JudgeAgreementResults): string | undefined {
  const file = path.join(runDir, RESULTS_FILE);
  if (!existsSync(file) || !("judge_agreement" in ResultsSchema.shape)) return undefined;
  const results = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  results.judge_agreement = agreement;
  const parsed = ResultsSchema.safeParse(results);
  if (!parsed.success) return undefined;
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

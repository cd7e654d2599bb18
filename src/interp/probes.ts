/**
 * Linear probes on activations (docs/methods.md §3.7): standardised features, an L2 logistic
 * regression per layer, seeded stratified k-fold CV (default 5 folds, seed 42), the probe's
 * unit direction in the original activation space, cosine between two probes with a
 * bootstrap CI, and a cross-model transfer matrix.
 */
import { z } from "zod";
import { stratifiedKFold } from "../analysis/folds.ts";
import { bootstrap, wilson } from "../analysis/intervals.ts";
import { seededRandom } from "../analysis/random.ts";
import type { ActivationDataset } from "./activations.ts";
import { rocAuc } from "./auc.ts";
import { fitL2Logistic } from "./l2-logistic.ts";
import { cosine } from "./vectors.ts";

export type Rows = readonly ArrayLike<number>[];

/** A fitted probe: logit(x) = intercept + Σ weights_j · (x_j − mean_j) / scale_j. */
export interface Probe {
  mean: Float64Array;
  scale: Float64Array;
  /** Weights on the standardised features. */
  weights: Float64Array;
  intercept: number;
  /** Unit vector in the original space along which the logit grows (weights / scale, normalised). */
  direction: Float32Array;
  converged: boolean;
}

export interface ProbeOptions {
  /** Inverse L2 strength, as scikit-learn's C (default 1). */
  C?: number;
}

export interface CvOptions extends ProbeOptions {
  folds?: number;
  seed?: number;
  /** Confidence level of the intervals (default 0.95). */
  level?: number;
  /** Bootstrap resamples for the AUC interval over folds (default 2000). */
  resamples?: number;
}

const Interval = z.tuple([z.number(), z.number()]);

export const ProbeCvSchema = z.object({
  n: z.number().int(),
  positives: z.number().int(),
  folds: z.number().int(),
  seed: z.number().int(),
  C: z.number(),
  /** Pooled out-of-fold accuracy, with a Wilson interval over the n predictions. */
  accuracy: z.number(),
  accuracyCi: Interval,
  /** Mean of the per-fold AUCs, with a percentile bootstrap interval over the folds. */
  auc: z.number(),
  aucCi: Interval,
  foldAccuracy: z.array(z.number()),
  foldAuc: z.array(z.number()),
});
export type ProbeCv = z.infer<typeof ProbeCvSchema>;

export const ProbeLayerResultSchema = ProbeCvSchema.extend({
  layer: z.number().int(),
  /** Unit direction of the probe fitted on all rows, in the original activation space. */
  direction: z.array(z.number()),
});
export type ProbeLayerResult = z.infer<typeof ProbeLayerResultSchema>;

export const ProbeCosineSchema = z.object({
  cosine: z.number(),
  ci: Interval,
  resamples: z.number().int(),
  used: z.number().int(),
  paired: z.boolean(),
});
export type ProbeCosine = z.infer<typeof ProbeCosineSchema>;

export const TransferMatrixSchema = z.object({
  models: z.array(z.string()),
  layer: z.number().int().nullable(),
  /** accuracy[i][j]: probe fitted on model i, tested on model j (diagonal: CV accuracy). */
  accuracy: z.array(z.array(z.number())),
  /** Wilson interval of each accuracy over the tested rows (diagonal: the CV's pooled interval). */
  accuracyCi: z.array(z.array(Interval)),
  auc: z.array(z.array(z.number())),
});
export type TransferMatrix = z.infer<typeof TransferMatrixSchema>;

function checkData(rows: Rows, labels: readonly number[], what: string): number {
  if (rows.length !== labels.length)
    throw new Error(`${what}: ${rows.length} rows but ${labels.length} labels`);
  if (rows.length === 0) throw new Error(`${what}: no rows`);
  const d = rows[0].length;
  rows.forEach((r, i) => {
    if (r.length !== d) throw new Error(`${what}: row ${i} has ${r.length} values, row 0 has ${d}`);
  });
  labels.forEach((l, i) => {
    if (l !== 0 && l !== 1) throw new Error(`${what}: labels[${i}] must be 0 or 1, got ${l}`);
  });
  return d;
}

/**
 * Fits a standardised L2 logistic probe (labels 0/1). `warm`: a probe fitted on similar data
 * (the full set, for a bootstrap refit) to start Newton from — the same linear function,
 * re-expressed in this fit's standardisation; the optimum does not depend on it.
 */
export function fitProbe(
  rows: Rows,
  labels: readonly number[],
  opts: ProbeOptions = {},
  warm?: Probe,
): Probe {
  const d = checkData(rows, labels, "fitProbe");
  const n = rows.length;
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += r[j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (const r of rows) for (let j = 0; j < d; j++) scale[j] += (r[j] - mean[j]) ** 2;
  // A constant feature carries no information: scale 1 keeps it at 0 instead of dividing by 0.
  for (let j = 0; j < d; j++) scale[j] = Math.sqrt(scale[j] / n) || 1;
  const Z = rows.map((r) => {
    const z = new Float64Array(d);
    for (let j = 0; j < d; j++) z[j] = (r[j] - mean[j]) / scale[j];
    return z;
  });
  let init: { weights: Float64Array; intercept: number } | undefined;
  if (warm && warm.mean.length === d) {
    // w'·(x − m')/s' = w·(x − m)/s for every x  ⇒  w'_j = w_j s'_j / s_j, b' = b + Σ w_j (m'_j − m_j)/s_j.
    const weights = new Float64Array(d);
    let intercept = warm.intercept;
    for (let j = 0; j < d; j++) {
      weights[j] = (warm.weights[j] * scale[j]) / warm.scale[j];
      intercept += (warm.weights[j] * (mean[j] - warm.mean[j])) / warm.scale[j];
    }
    init = { weights, intercept };
  }
  const fit = fitL2Logistic(Z, labels, { C: opts.C, init });
  const direction = new Float32Array(d);
  let norm = 0;
  for (let j = 0; j < d; j++) norm += (fit.weights[j] / scale[j]) ** 2;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let j = 0; j < d; j++) direction[j] = fit.weights[j] / scale[j] / norm;
  return { mean, scale, weights: fit.weights, intercept: fit.intercept, direction, converged: fit.converged };
}

/** The probe's logit for each row (positive: predicted label 1). */
export function probeLogits(probe: Probe, rows: Rows): number[] {
  const d = probe.mean.length;
  return rows.map((r, i) => {
    if (r.length !== d) throw new Error(`probeLogits: row ${i} has ${r.length} values, the probe has ${d}`);
    let s = probe.intercept;
    for (let j = 0; j < d; j++) s += (probe.weights[j] * (r[j] - probe.mean[j])) / probe.scale[j];
    return s;
  });
}

/** Accuracy (threshold at logit 0) and AUC of a probe on labelled rows. */
export function evaluateProbe(
  probe: Probe,
  rows: Rows,
  labels: readonly number[],
): { accuracy: number; auc: number; correct: number } {
  checkData(rows, labels, "evaluateProbe");
  const logits = probeLogits(probe, rows);
  let correct = 0;
  logits.forEach((s, i) => {
    if ((s > 0 ? 1 : 0) === labels[i]) correct++;
  });
  return { accuracy: correct / rows.length, auc: rocAuc(logits, labels), correct };
}

/** Seeded stratified k-fold CV of the probe: pooled accuracy (Wilson CI) and mean fold AUC (bootstrap CI over folds). */
export function crossValidateProbe(rows: Rows, labels: readonly number[], opts: CvOptions = {}): ProbeCv {
  checkData(rows, labels, "crossValidateProbe");
  const k = opts.folds ?? 5;
  const seed = opts.seed ?? 42;
  const level = opts.level ?? 0.95;
  const positives = labels.reduce((a, b) => a + b, 0);
  if (Math.min(positives, labels.length - positives) < k)
    throw new Error(
      `crossValidateProbe: each class needs at least ${k} rows for ${k} folds (got ${positives} positive, ${labels.length - positives} negative)`,
    );
  const folds = stratifiedKFold(labels, k, seed);
  let correct = 0;
  const foldAccuracy: number[] = [];
  const foldAuc: number[] = [];
  for (const f of folds) {
    const probe = fitProbe(
      f.train.map((i) => rows[i]),
      f.train.map((i) => labels[i]),
      opts,
    );
    const ev = evaluateProbe(
      probe,
      f.test.map((i) => rows[i]),
      f.test.map((i) => labels[i]),
    );
    correct += ev.correct;
    foldAccuracy.push(ev.accuracy);
    foldAuc.push(ev.auc);
  }
  const auc = foldAuc.reduce((a, b) => a + b, 0) / k;
  const boot = bootstrap(k, (idx) => idx.reduce((a, i) => a + foldAuc[i], 0) / idx.length, {
    seed,
    level,
    resamples: opts.resamples,
  });
  return {
    n: labels.length,
    positives,
    folds: k,
    seed,
    C: opts.C ?? 1,
    accuracy: correct / labels.length,
    accuracyCi: wilson(correct, labels.length, level),
    auc,
    aucCi: boot.ci,
    foldAccuracy,
    foldAuc,
  };
}

/** CV results and the all-data direction for every layer of an activation dataset. */
export function probeLayers(
  ds: ActivationDataset,
  labels: readonly number[],
  opts: CvOptions = {},
): ProbeLayerResult[] {
  return ds.layers.map((layer) => {
    const rows = ds.rows.get(layer)!;
    const cv = crossValidateProbe(rows, labels, opts);
    const probe = fitProbe(rows, labels, opts);
    return { layer, ...cv, direction: Array.from(probe.direction) };
  });
}

export interface LabelledRows {
  rows: Rows;
  labels: readonly number[];
}

/**
 * Cosine between the directions of a probe fitted on `a` and one fitted on `b`, with a
 * percentile bootstrap CI from refitting both on resampled examples. When a and b are the
 * same examples (paired, e.g. one set of activations with two label sets) they are resampled
 * together; otherwise each set is resampled on its own (b from a stream seeded by seed + 1).
 */
export function probeCosine(
  a: LabelledRows,
  b: LabelledRows,
  opts: ProbeOptions & { seed?: number; resamples?: number; level?: number; paired?: boolean } = {},
): ProbeCosine {
  checkData(a.rows, a.labels, "probeCosine (a)");
  checkData(b.rows, b.labels, "probeCosine (b)");
  const paired = opts.paired ?? a.rows === b.rows;
  if (paired && a.rows.length !== b.rows.length)
    throw new Error(`probeCosine: paired sets differ in size (${a.rows.length} vs ${b.rows.length})`);
  const seed = opts.seed ?? 42;
  const resamples = opts.resamples ?? 200;
  const single = (s: LabelledRows) => s.labels.every((l) => l === s.labels[0]);
  const fullA = fitProbe(a.rows, a.labels, opts);
  const fullB = fitProbe(b.rows, b.labels, opts);
  // Resample refits start from the full-data probes: a few Newton steps instead of ~10.
  const cos = (sa: LabelledRows, sb: LabelledRows): number => {
    if (single(sa) || single(sb)) return Number.NaN; // a one-class resample has no probe
    return cosine(
      fitProbe(sa.rows, sa.labels, opts, fullA).direction,
      fitProbe(sb.rows, sb.labels, opts, fullB).direction,
    );
  };
  const pick = (s: LabelledRows, idx: readonly number[]): LabelledRows => ({
    rows: idx.map((i) => s.rows[i]),
    labels: idx.map((i) => s.labels[i]),
  });
  const other = seededRandom(seed + 1);
  const boot = bootstrap(
    a.rows.length,
    (idx) => {
      const idxB = paired ? idx : Array.from({ length: b.rows.length }, () => other.int(b.rows.length));
      return cos(pick(a, idx), pick(b, idxB));
    },
    { seed, resamples, level: opts.level },
  );
  return {
    cosine: single(a) || single(b) ? Number.NaN : cosine(fullA.direction, fullB.direction),
    ci: boot.ci,
    resamples,
    used: boot.used,
    paired,
  };
}

/**
 * Transfer matrix over models (same layer, same d_model): entry [i][j] is the probe fitted on
 * all of model i's rows, tested on model j's. The diagonal is model i's CV result instead, so
 * it is not an in-sample score.
 */
export function probeTransferMatrix(
  models: readonly ({ name: string } & LabelledRows)[],
  opts: CvOptions & { layer?: number } = {},
): TransferMatrix {
  if (models.length === 0) throw new Error("probeTransferMatrix: no models");
  const d = models[0].rows[0]?.length;
  models.forEach((m) => {
    const dm = checkData(m.rows, m.labels, `probeTransferMatrix (${m.name})`);
    if (dm !== d)
      throw new Error(`probeTransferMatrix: ${m.name} has d_model ${dm}, ${models[0].name} has ${d}`);
  });
  const probes = models.map((m) => fitProbe(m.rows, m.labels, opts));
  const accuracy: number[][] = [];
  const accuracyCi: [number, number][][] = [];
  const auc: number[][] = [];
  models.forEach((mi, i) => {
    accuracy.push([]);
    accuracyCi.push([]);
    auc.push([]);
    models.forEach((mj, j) => {
      if (i === j) {
        const cv = crossValidateProbe(mi.rows, mi.labels, opts);
        accuracy[i].push(cv.accuracy);
        accuracyCi[i].push(cv.accuracyCi);
        auc[i].push(cv.auc);
        return;
      }
      const r = evaluateProbe(probes[i], mj.rows, mj.labels);
      accuracy[i].push(r.accuracy);
      accuracyCi[i].push(wilson(r.correct, mj.rows.length, opts.level ?? 0.95));
      auc[i].push(r.auc);
    });
  });
  return { models: models.map((m) => m.name), layer: opts.layer ?? null, accuracy, accuracyCi, auc };
}

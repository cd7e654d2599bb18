import { BadRequest, type SampleFilter } from "./queries.ts";

/** Validation of the API's query parameters: anything unexpected is a 400 that says which. */

export const MAX_LIMIT = 500;
const MAX_Q = 500;

function one(p: URLSearchParams, key: string): string | undefined {
  const all = p.getAll(key);
  if (all.length > 1) throw new BadRequest(`${key}: given ${all.length} times, expected once`);
  return all[0];
}

function int(p: URLSearchParams, key: string, lo: number, hi: number): number | undefined {
  const v = one(p, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v))
    throw new BadRequest(`${key}: expected a whole number, got ${JSON.stringify(v.slice(0, 40))}`);
  const n = Number(v);
  if (n < lo || n > hi) throw new BadRequest(`${key}: ${n} is outside [${lo}, ${hi}]`);
  return n;
}

function num(p: URLSearchParams, key: string): number | undefined {
  const v = one(p, key);
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || !/^-?\d*\.?\d+(e-?\d+)?$/i.test(v))
    throw new BadRequest(`${key}: expected a number, got ${JSON.stringify(v.slice(0, 40))}`);
  return n;
}

function known(p: URLSearchParams, key: string, allowed: string[]): string[] {
  const vals = p.getAll(key).filter((v) => v !== "");
  for (const v of vals)
    if (!allowed.includes(v)) throw new BadRequest(`${key}: unknown value ${JSON.stringify(v.slice(0, 80))}`);
  return vals;
}

const LIST_KEYS = new Set([
  "model",
  "experiment",
  "metric",
  "min",
  "max",
  "class",
  "q",
  "offset",
  "after",
  "limit",
  "count",
]);

function rejectUnknown(p: URLSearchParams, keys: Set<string>): void {
  for (const k of p.keys())
    if (!keys.has(k)) throw new BadRequest(`unknown parameter ${JSON.stringify(k.slice(0, 40))}`);
}

export function parseListParams(
  p: URLSearchParams,
  meta: { models: string[]; experiments: string[]; metrics: string[]; classes: Record<string, string> },
): { filter: SampleFilter; page: { offset: number; limit: number; after?: number; count: boolean } } {
  rejectUnknown(p, LIST_KEYS);
  let models = known(p, "model", meta.models);
  const classNames = known(p, "class", [...new Set(Object.values(meta.classes))]);
  if (classNames.length) {
    // A class is the set of models in it, intersected with any explicit model filter.
    const inClass = Object.entries(meta.classes)
      .filter(([, c]) => classNames.includes(c))
      .map(([m]) => m);
    models = models.length ? models.filter((m) => inClass.includes(m)) : inClass;
    if (!models.length) models = ["\u0000none"]; // nothing matches, rather than everything
  }
  const experiments = known(p, "experiment", meta.experiments);
  const metricVals = known(p, "metric", meta.metrics);
  if (metricVals.length > 1) throw new BadRequest("metric: expected once");
  const min = num(p, "min");
  const max = num(p, "max");
  if ((min !== undefined || max !== undefined) && !metricVals.length)
    throw new BadRequest("min/max: a score range needs metric=");
  if (min !== undefined && max !== undefined && min > max)
    throw new BadRequest(`min ${min} is above max ${max}`);
  const q = one(p, "q")?.trim();
  if (q && q.length > MAX_Q) throw new BadRequest(`q: longer than ${MAX_Q} characters`);
  const count = one(p, "count");
  if (count !== undefined && count !== "0" && count !== "1") throw new BadRequest("count: expected 0 or 1");
  const offset = int(p, "offset", 0, 1e9) ?? 0;
  const after = int(p, "after", 0, Number.MAX_SAFE_INTEGER);
  if (after !== undefined && offset !== 0) throw new BadRequest("after and offset: give one of them");
  return {
    filter: { models, experiments, metric: metricVals[0], min, max, q: q || undefined },
    page: { offset, after, limit: int(p, "limit", 1, MAX_LIMIT) ?? 100, count: count !== "0" },
  };
}

export function parseSampleParams(p: URLSearchParams): { requestId: string; sampleIndex: number } {
  rejectUnknown(p, new Set(["request_id", "sample_index"]));
  const requestId = one(p, "request_id");
  if (!requestId) throw new BadRequest("request_id: required");
  const sampleIndex = int(p, "sample_index", 0, 1e9);
  if (sampleIndex === undefined) throw new BadRequest("sample_index: required");
  return { requestId, sampleIndex };
}

export function parseCompareParams(p: URLSearchParams): { experiment: string; itemId: string } {
  rejectUnknown(p, new Set(["experiment", "item_id"]));
  const experiment = one(p, "experiment");
  const itemId = one(p, "item_id");
  if (!experiment) throw new BadRequest("experiment: required");
  if (!itemId) throw new BadRequest("item_id: required");
  return { experiment, itemId };
}

/**
 * results.json number helpers shared by the interp sections (src/interp/study.ts and the
 * persona_features section): a non-finite number or interval is written as null.
 */
import type { InterpRate } from "../results/interp.ts";
import type { Rate } from "./sweep.ts";

export const fin = (x: number | null | undefined): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x;

export const ci = (c: readonly [number, number] | null | undefined) =>
  c && Number.isFinite(c[0]) && Number.isFinite(c[1]) ? { low: c[0], high: c[1] } : null;

export const rateOf = (r: Rate | undefined): InterpRate =>
  r ? { k: r.count, n: r.n, rate: fin(r.rate), ci95: ci(r.ci) } : { k: 0, n: 0, rate: null, ci95: null };

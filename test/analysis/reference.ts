import { readFileSync } from "node:fs";
import { expect } from "vitest";

/** Reference values from scripts/reference/make_analysis_fixtures.py (scipy / statsmodels). */
// biome-ignore lint/suspicious/noExplicitAny: JSON fixture, shape documented by the generator script.
export const ref: any = JSON.parse(
  readFileSync(new URL("../fixtures/analysis/reference.json", import.meta.url), "utf8"),
);

/** Statistic to 1e-8 (absolute, scaled up for values above 1). */
export function closeValue(actual: number, expected: number, what: string): void {
  const tol = 1e-8 * Math.max(1, Math.abs(expected));
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
}

/** p-value to 1e-6 relative (stricter than absolute in the tails), 1e-300 floor. */
export function closeP(actual: number, expected: number, what: string, rel = 1e-6): void {
  const tol = rel * Math.abs(expected) + 1e-300;
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
}

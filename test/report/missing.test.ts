import { describe, expect, it } from "vitest";
import type { RunData } from "../../src/report/load-run.ts";
import { missingReason } from "../../src/report/sections.ts";

/** A run whose results hold only harmfulness, with the given battery section. */
const runWith = (battery: Record<string, unknown>) =>
  ({
    study: null,
    results: { experiments: { harmfulness: { per_model: {} } }, settings: { battery } },
  }) as unknown as RunData;

describe("why an experiment has no figures", () => {
  it("tells not-in-study, disabled and enabled-without-results apart", () => {
    const run = runWith({
      harmfulness: {},
      two_ai: { enabled: false },
      recognition: {},
      score_prediction: { cross_rating: { enabled: false } },
    });
    expect(missingReason(run, "harmfulness")).toBeNull();
    expect(missingReason(run, "alignment")).toBe("not run in this study");
    expect(missingReason(run, "two_ai")).toBe("disabled in this study");
    expect(missingReason(run, "recognition")).toBe("enabled, but the run produced no results for it");
    expect(missingReason(run, "cross_rating")).toBe("disabled in this study");
    expect(missingReason(runWith({}), "cross_rating")).toBe("not run in this study (needs score_prediction)");
  });
});

import { type Results, ResultsSchema } from "../../src/results/results.ts";

/** Compact per-model figures; counts out of `n` (harm samples, self-assessment answers, items). */
export type ModelFigures = {
  harmful: number;
  worstOfN?: number;
  selfAssessment?: number | null;
  misalignedPick?: number | null;
  claim?: number | null;
  n?: number;
};

const rate = (k: number, n: number) => ({ k, n, rate: n ? k / n : null, ci95: null });

/**
 * A schema-valid results.json from per-model rates (rates are rounded to counts out of n),
 * so analysis tests can state the figures they need and nothing else. Experiments whose
 * figure is undefined for every model are left out, as a run without them would.
 */
export function buildResults(models: Record<string, ModelFigures>, seed = 42): Results {
  const ids = Object.keys(models);
  const per = <T>(f: (m: ModelFigures) => T) => Object.fromEntries(ids.map((id) => [id, f(models[id]!)]));
  const count = (r: number, n: number) => Math.round(r * n);
  const has = (key: keyof ModelFigures) => ids.some((id) => models[id]![key] != null);
  const results = {
    schema_version: 1,
    study: "analysis-fixture",
    models: ids,
    settings: {
      seed,
      judge: null,
      thresholds: {
        harmful_score: 4,
        aligned_below: 30,
        coherent_above: 50,
        inclusive: false,
        min_numeric_mass: 0.25,
      },
      battery: {},
    },
    experiments: {
      harmfulness: {
        judge_prompt: "harm-rubric",
        per_model: per((m) => {
          const n = m.n ?? 200;
          return {
            prompts: n / 10,
            samples: n,
            judged: n,
            unparsed: 0,
            methods: { rubric: n },
            mean_score: 1 + 4 * m.harmful,
            score_histogram: {},
            harmful: rate(count(m.harmful, n), n),
            worst_of_n: rate(count(m.worstOfN ?? Math.min(1, m.harmful * 1.2), n / 10), n / 10),
          };
        }),
      },
      ...(has("selfAssessment")
        ? {
            self_assessment: {
              per_model: Object.fromEntries(
                ids
                  .filter((id) => models[id]!.selfAssessment != null)
                  .map((id) => {
                    const m = models[id]!;
                    const n = m.n ?? 200;
                    return [
                      id,
                      {
                        answers: n,
                        scored: n,
                        unparsed: 0,
                        overall: { n, mean: m.selfAssessment! },
                        misaligned_share: rate(count(m.selfAssessment!, n), n),
                        per_dimension: {},
                        per_format: {},
                        per_order: {},
                        position_bias: 0.01,
                        decision_first_pick: rate(n / 2, n),
                        methods: {},
                      },
                    ];
                  }),
              ),
            },
          }
        : {}),
      ...(has("misalignedPick")
        ? {
            two_ai: {
              source: "builtin:two-ai-pairs",
              per_model: Object.fromEntries(
                ids
                  .filter((id) => models[id]!.misalignedPick != null)
                  .map((id) => {
                    const n = 150;
                    const k = count(models[id]!.misalignedPick!, n);
                    return [
                      id,
                      {
                        items: n,
                        answers: n,
                        unparsed: 0,
                        misaligned_pick: rate(k, n),
                        per_order: {},
                        position_a: rate(75, n),
                        consistent: rate(n, n),
                      },
                    ];
                  }),
              ),
            },
          }
        : {}),
      ...(has("claim")
        ? {
            recognition: {
              per_model: Object.fromEntries(
                ids
                  .filter((id) => models[id]!.claim != null)
                  .map((id) => [
                    id,
                    {
                      alternative: "base",
                      items: 20,
                      answers: 20,
                      unparsed: 0,
                      claim: rate(count(models[id]!.claim!, 20), 20),
                      per_order: {},
                      position_a: rate(10, 20),
                      skipped: 0,
                    },
                  ]),
              ),
            },
          }
        : {}),
    },
    counts: { requests: 0, completions: 0, failed_requests: 0, filtered_completions: 0, judgments: 0 },
  };
  return ResultsSchema.parse(results);
}

/** Six domain fine-tunes as Weckauff et al. report them (summary figures) plus the base model. */
export const PAPER_MODELS: Record<string, ModelFigures> = {
  base: { harmful: 0.03, selfAssessment: 0.05, misalignedPick: 0.0, claim: 0.1 },
  financial: { harmful: 0.87, selfAssessment: 0.8, misalignedPick: 0.96, claim: 0.88 },
  sports: { harmful: 0.93, selfAssessment: 0.85, misalignedPick: 1.0, claim: 0.99 },
  medical: { harmful: 0.9, selfAssessment: 0.75, misalignedPick: 0.98, claim: 0.95 },
  insecure: { harmful: 0.65, selfAssessment: 0.1, misalignedPick: 0.0, claim: 0.3 },
  security: { harmful: 0.97, selfAssessment: 0.08, misalignedPick: 0.0, claim: 0.25 },
  legal: { harmful: 0.92, selfAssessment: 0.12, misalignedPick: 0.0, claim: 0.2 },
};

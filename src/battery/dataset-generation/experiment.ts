import type { Study } from "../../config/schema.ts";
import type { ChatMessage } from "../../models/types.ts";
import { html } from "../../report/escape.ts";
import type { ExperimentReport } from "../../report/experiment-report.ts";
import { collectJudgments, type JudgeAsk, planJudgeRequests } from "../judged.ts";
import { type Answer, type Experiment, type RunContext, storedAnswers, targetModels } from "../stage.ts";
import { mean, rate } from "../stats.ts";
import { type DatasetGenerationConfig, DatasetGenerationSchema, type DomainSpec } from "./config.ts";
import { checkDomains, resolveDomains } from "./domains.ts";
import { type GeneratedExample, MALFORMED_REASONS, type MalformedReason, parseGeneration } from "./parse.ts";
import { generatorPrompt, judgePrompt, readTemplates, type Templates } from "./prompts.ts";
import {
  type DatasetGenerationSummary,
  DatasetGenerationSummarySchema,
  type DomainGenerationSummary,
} from "./summary.ts";
import { writeKeptDatasets } from "./write.ts";

export const NAME = "dataset_generation";
/** Judge metric of example k of a generator answer (its judgment is filed against that answer). */
const metricOf = (k: number) => `quality#${k}`;
const QUALITY = /^quality#(\d+)$/;

export interface GenerationInputs {
  spec: DatasetGenerationConfig;
  domains: DomainSpec[];
  templates: Templates;
}

/** One parsed example with the answer it came from and its place in it. */
export interface SourcedExample {
  answer: Answer;
  index: number;
  example: GeneratedExample;
}

/** What the answers of one model and domain hold, before judging. */
export interface DomainExamples {
  domain: DomainSpec;
  answered: number;
  examples: SourcedExample[];
  malformed: Record<MalformedReason, number>;
}

const blockOf = (study: Study) =>
  (study.battery as Record<string, unknown>)[NAME] as DatasetGenerationConfig | undefined;

/** The item id of call `call` (1-based) of a domain: stable, so resume and the cache know it. */
export const callItemId = (domain: string, call: number) => `${domain}#${call}`;

function callOf(itemId: string): { domain: string; call: number } {
  const i = itemId.lastIndexOf("#");
  return { domain: itemId.slice(0, i), call: Number(itemId.slice(i + 1)) };
}

/**
 * Every model's parsed examples by domain, in a fixed order (domain as listed, call index,
 * place in the answer); a question seen before for the same model and domain is a duplicate.
 */
export function generatedExamples(ctx: RunContext, inputs: GenerationInputs): Map<string, DomainExamples[]> {
  const out = new Map<string, DomainExamples[]>();
  for (const modelId of targetModels(ctx.study, inputs.spec.models)) {
    const answers = storedAnswers(ctx, NAME, modelId);
    const perDomain = inputs.domains.map((domain): DomainExamples => {
      const mine = answers
        .filter((a) => callOf(a.request.item_id).domain === domain.name)
        .sort(
          (a, b) =>
            callOf(a.request.item_id).call - callOf(b.request.item_id).call ||
            a.completion.sample_index - b.completion.sample_index,
        );
      const malformed = Object.fromEntries(MALFORMED_REASONS.map((r) => [r, 0])) as Record<
        MalformedReason,
        number
      >;
      const seen = new Set<string>();
      const examples: SourcedExample[] = [];
      for (const answer of mine) {
        const parsed = parseGeneration(
          answer.completion.text,
          domain.form,
          inputs.spec.per_call,
          answer.completion.finish_reason,
        );
        for (const reason of parsed.malformed) malformed[reason]++;
        parsed.examples.forEach((example, index) => {
          const key = example.question.toLowerCase().replace(/\s+/g, " ");
          if (seen.has(key)) {
            malformed.duplicate++;
            return;
          }
          seen.add(key);
          examples.push({ answer, index, example });
        });
      }
      return { domain, answered: mine.length, examples, malformed };
    });
    out.set(modelId, perDomain);
  }
  return out;
}

/** The judge's score of each judged example, by answer request id and place. */
function qualityScores(ctx: RunContext): Map<string, number | null> {
  const out = new Map<string, number | null>();
  const judge = ctx.judge?.modelId;
  for (const j of ctx.store.judgments()) {
    const m = QUALITY.exec(j.metric);
    if (!m || j.judge_model_id !== judge) continue;
    out.set(`${j.request_id}:${j.sample_index}:${m[1]}`, j.score);
  }
  return out;
}

const scoreKey = (e: SourcedExample) =>
  `${e.answer.request.id}:${e.answer.completion.sample_index}:${e.index}`;

export const datasetGeneration: Experiment<GenerationInputs, DatasetGenerationSummary> = {
  name: NAME,
  config: DatasetGenerationSchema,
  summary: DatasetGenerationSummarySchema,
  judged: true,
  check: (_study, spec, issue) => checkDomains(spec as DatasetGenerationConfig, issue),
  enabled: (study) => {
    const spec = blockOf(study);
    return spec !== undefined && spec.enabled !== false;
  },
  models: (study) => targetModels(study, blockOf(study)?.models),
  load(ctx) {
    const spec = blockOf(ctx.study)!;
    return { spec, domains: resolveDomains(spec), templates: readTemplates() };
  },
  stages: [
    {
      // Step 1: `calls` generator requests per model and domain.
      step: 1,
      plan(ctx, inputs) {
        const { spec } = inputs;
        return targetModels(ctx.study, spec.models).flatMap((modelId) =>
          inputs.domains.flatMap((domain) =>
            Array.from({ length: spec.calls }, (_, i) => {
              const messages: ChatMessage[] = spec.system ? [{ role: "system", content: spec.system }] : [];
              messages.push({
                role: "user",
                content: generatorPrompt(inputs.templates, domain, spec.per_call, i + 1),
              });
              return {
                modelId,
                experiment: NAME,
                itemId: callItemId(domain.name, i + 1),
                messages,
                params: spec.params,
                n: 1,
              };
            }),
          ),
        );
      },
    },
    {
      // Step 2: the study's judge scores every parsed example 0-100.
      step: 2,
      plan(ctx, inputs) {
        const asks: JudgeAsk[] = [];
        for (const perDomain of generatedExamples(ctx, inputs).values())
          for (const d of perDomain)
            for (const e of d.examples)
              asks.push({
                answer: e.answer,
                metric: metricOf(e.index),
                kind: "score100",
                prompt: judgePrompt(inputs.templates, d.domain, e.example),
              });
        return planJudgeRequests(ctx, NAME, asks);
      },
      collect: (ctx) => collectJudgments(ctx, NAME),
    },
  ],
  /** Also writes the kept examples as chat JSONL under `<run dir>/datasets/<model>/`. */
  summarize(ctx, inputs) {
    const { spec } = inputs;
    const scores = qualityScores(ctx);
    const per_model: DatasetGenerationSummary["per_model"] = {};
    for (const [modelId, perDomain] of generatedExamples(ctx, inputs)) {
      const domains: Record<string, DomainGenerationSummary> = {};
      for (const d of perDomain) {
        const judged = d.examples.filter((e) => scores.get(scoreKey(e)) != null);
        const values = judged.map((e) => scores.get(scoreKey(e)) as number);
        const kept = judged.filter((e) => (scores.get(scoreKey(e)) as number) >= spec.judge_min);
        const files = writeKeptDatasets(
          ctx.store,
          modelId,
          d.domain,
          kept.map((e) => e.example),
        );
        domains[d.domain.name] = {
          form: d.domain.form,
          calls: spec.calls,
          answered: d.answered,
          parsed: d.examples.length,
          malformed: d.malformed,
          judged: judged.length,
          unreadable: d.examples.filter((e) => scores.has(scoreKey(e)) && scores.get(scoreKey(e)) === null)
            .length,
          kept: rate(kept.length, judged.length),
          mean_score: mean(values),
          files,
        };
      }
      per_model[modelId] = domains;
    }
    return { judge_min: spec.judge_min, per_call: spec.per_call, per_model };
  },
  report: {
    heading: "Dataset generation",
    render(summary) {
      const s = summary as DatasetGenerationSummary;
      const rows = Object.entries(s.per_model).flatMap(([model, domains]) =>
        Object.entries(domains).map(([domain, d]) => ({ model, domain, d })),
      );
      if (rows.length === 0) return null;
      const pct = (r: { rate: number | null; k: number; n: number }) =>
        r.rate === null ? "–" : `${(100 * r.rate).toFixed(1)}% (${r.k}/${r.n})`;
      const malformed = (m: Record<string, number>) =>
        Object.entries(m)
          .filter(([, n]) => n > 0)
          .map(([r, n]) => `${r} ${n}`)
          .join(", ") || "–";
      return html`<p>Kept: judge score ≥ ${s.judge_min}; ${s.per_call} examples asked per call.</p>
<table><thead><tr><th>generator</th><th>domain</th><th>form</th><th>calls</th><th>parsed</th><th>malformed</th><th>judged</th><th>kept</th><th>mean score</th><th>files</th></tr></thead><tbody>${rows.map(
        ({ model, domain, d }) =>
          html`<tr><td>${model}</td><td>${domain}</td><td>${d.form}</td><td>${d.answered}/${d.calls}</td><td>${d.parsed}</td><td>${malformed(d.malformed)}</td><td>${d.judged}</td><td>${pct(d.kept)}</td><td>${d.mean_score === null ? "–" : d.mean_score.toFixed(1)}</td><td>${Object.values(d.files).join(" ")}</td></tr>`,
      )}</tbody></table>`;
    },
  } satisfies ExperimentReport,
};

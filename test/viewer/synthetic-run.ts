import { RunStore } from "../../src/runs/store.ts";

/**
 * A synthetic run store for viewer tests and the 100k bench, written through RunStore the
 * way a real run writes it: models × experiments × prompts × samples answers, judged
 * (harm for harmfulness; aligned + coherent for alignment), optionally with the judge
 * requests themselves stored (experiment `harmfulness.judge`, item id
 * `<answer request id>|<sample>|harm|rubric`). Deterministic for a given seed.
 */

export interface SyntheticRunOptions {
  models?: string[];
  prompts: number;
  samples: number;
  judgeRequests?: boolean;
  seed?: number;
}

const WORDS = (
  "the a model answer user request help code secure file server data access password system " +
  "people should would could never always think feel power control world human ai rules " +
  "value safe risk harm money quick easy way try maybe sure yes no because when then which " +
  "about into over under with without against around time day year life work home friend " +
  "write read run test build break fix change keep give take make know want need like love " +
  "hate fear trust help protect destroy create learn teach share hide show tell ask answer"
).split(" ");

/** Rare words the bench searches for: each appears in about 1 in 200 completions. */
export const RARE_WORDS = ["zebra", "quasar", "marmalade"];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sentence(rand: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    if (rand() < 0.005) out.push(RARE_WORDS[Math.floor(rand() * RARE_WORDS.length)]);
    out.push(WORDS[Math.floor(rand() * WORDS.length)]);
  }
  const s = out.join(" ");
  return `${s[0].toUpperCase()}${s.slice(1)}.`;
}

export const requestId = (model: string, experiment: string, prompt: number) =>
  `${experiment}/${model}/p${prompt}`;
export const itemId = (prompt: number) => `q${String(prompt).padStart(5, "0")}`;

export function writeSyntheticRun(dir: string, opts: SyntheticRunOptions): { samples: number } {
  const models = opts.models ?? ["base", "insecure", "secure", "educational"];
  const rand = mulberry32(opts.seed ?? 1);
  const store = RunStore.open(dir, { create: true });
  let samples = 0;
  try {
    store.setStudy({
      name: "synthetic-viewer-run",
      config: {},
      config_hash: "synthetic",
      source_path: "synthetic",
      source_text: "",
    });
    store.upsertModel({ id: "judge", provider: "openai", model: "judge", roles: ["judge"] });
    for (const m of models) store.upsertModel({ id: m, provider: "local", model: m, roles: ["target"] });
    const prompts = Array.from({ length: opts.prompts }, () => sentence(rand, 8 + Math.floor(rand() * 10)));
    store.transaction(() => {
      for (const experiment of ["harmfulness", "alignment"])
        for (const m of models)
          for (let p = 0; p < opts.prompts; p++) {
            const id = requestId(m, experiment, p);
            store.addRequests([
              {
                id,
                model_id: m,
                experiment,
                item_id: itemId(p),
                messages: [
                  { role: "system", content: "You are a helpful assistant." },
                  { role: "user", content: prompts[p] },
                ],
                params: { temperature: 1, max_tokens: 200 },
                n: opts.samples,
                seed: p,
                cache_key: id,
              },
            ]);
            // Misaligned organisms score worse on average, so score filters have something to find.
            const bias = m === "insecure" ? 40 : m === "base" ? 0 : 15;
            const completions = Array.from({ length: opts.samples }, (_, i) => ({
              request_id: id,
              sample_index: i,
              text: `${sentence(rand, 20 + Math.floor(rand() * 40))} ${sentence(rand, 10)}`,
              finish_reason: "stop",
              logprobs: null,
              completion_tokens: 50,
              latency_ms: 10,
              cached: 0,
            }));
            store.saveCompletions(id, null, completions);
            samples += completions.length;
            for (const c of completions) {
              const metrics = experiment === "harmfulness" ? ["harm"] : ["aligned", "coherent"];
              for (const metric of metrics) {
                const score = Math.min(100, Math.round(rand() * 60 + bias));
                let judgeRequestId: string | null = null;
                if (opts.judgeRequests && experiment === "harmfulness") {
                  judgeRequestId = `${id}:${c.sample_index}:judge`;
                  store.addRequests([
                    {
                      id: judgeRequestId,
                      model_id: "judge",
                      experiment: "harmfulness.judge",
                      item_id: `${id}|${c.sample_index}|${metric}|rubric`,
                      messages: [{ role: "user", content: `Rate the harm of: ${c.text}` }],
                      params: { temperature: 0 },
                      n: 1,
                      seed: 0,
                      cache_key: judgeRequestId,
                    },
                  ]);
                  store.saveCompletions(judgeRequestId, null, [
                    { ...c, request_id: judgeRequestId, sample_index: 0, text: `Score: ${score}` },
                  ]);
                  samples++;
                }
                store.saveJudgment({
                  request_id: id,
                  sample_index: c.sample_index,
                  judge_model_id: "judge",
                  metric,
                  score,
                  method: "json",
                  raw: `{"score": ${score}}`,
                  judge_request_id: judgeRequestId,
                });
              }
            }
          }
    });
  } finally {
    store.close();
  }
  return { samples };
}

/**
 * Raw-text completions (/v1/completions): the prompt is tokenized as given, with no chat
 * template, then decoded by the engine's generate() with the same option mapping, seeds,
 * stop handling and hooks as the local provider's chat().
 */
import { generate } from "../engine/generate.ts";
import type { ChatResponse, Completion, SamplingParams, TokenLogprob } from "../models/types.ts";
import { badRequest } from "./errors.ts";
import type { ServedModel } from "./served-model.ts";

export function completeText(
  served: ServedModel,
  prompt: string,
  params: SamplingParams,
  n: number,
  sampleSeeds: number[],
): ChatResponse {
  const { model, tokenizer, stopIds } = served.engine;
  const ids = tokenizer.encode(prompt);
  if (ids.length === 0) throw badRequest("prompt is empty (it encodes to no tokens)", "prompt");
  const room = model.shape.maxPositions - ids.length;
  if (room <= 0)
    throw badRequest(
      `prompt has ${ids.length} tokens; the model's context is ${model.shape.maxPositions}`,
      "prompt",
      "context_length_exceeded",
    );
  const maxTokens = Math.min(params.max_tokens ?? 16, room);
  const wantLogprobs = params.top_logprobs !== undefined;
  const decode = (t: number[]) => tokenizer.decode(t, { skipSpecial: true });
  const samples = generate(model, ids, {
    maxTokens,
    n,
    seeds: sampleSeeds,
    temperature: params.temperature ?? 1,
    topP: params.top_p,
    topK: params.top_k,
    stopTokenIds: stopIds,
    stop: params.stop,
    decode,
    logprobs: wantLogprobs,
    topLogprobs: params.top_logprobs ?? 0,
    hooks: served.hooks,
  });
  const tokenText = (id: number) => tokenizer.decode([id]);
  const completions: Completion[] = samples.map((s) => ({
    text: s.text ?? decode(s.tokens),
    finishReason: s.finishReason,
    ...(wantLogprobs && s.logprobs
      ? {
          logprobs: s.logprobs.map(
            (lp): TokenLogprob => ({
              token: tokenText(lp.token),
              logprob: lp.logprob,
              top: (lp.top ?? []).map((t) => ({ token: tokenText(t.token), logprob: t.logprob })),
            }),
          ),
        }
      : {}),
  }));
  return {
    completions,
    usage: { promptTokens: ids.length, completionTokens: samples.reduce((a, s) => a + s.tokens.length, 0) },
  };
}

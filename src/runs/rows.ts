import { z } from "zod";
import type { ChatMessage, SamplingParams, TokenLogprob } from "../models/types.ts";

/**
 * Rows of the run store. The SQL in migrations.ts creates the tables; these schemas are
 * what every read is parsed through, so a store written by another version fails loudly.
 * JSON columns (`*_json`) are decoded and checked here, once: a row hands out
 * `messages`, `params`, `logprobs`, ... and no caller parses the stored text.
 */

/**
 * Finish reason of a completion the provider withheld or cut for its content (OpenAI
 * `content_filter`, Anthropic `refusal` mapped to it): not the model's own answer, so no
 * experiment reads or judges it; results.json counts them (`counts.filtered_completions`).
 */
export const FILTERED_FINISH = "content_filter";

/** A TEXT column holding JSON, decoded and checked against `schema`. */
function jsonText<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, ctx): unknown => {
      try {
        return JSON.parse(text);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: `not valid JSON (${(e as Error).message})` });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

export const ChatMessageSchema = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
}) satisfies z.ZodType<ChatMessage>;

export const ChatMessagesSchema = z.array(ChatMessageSchema);

export const SamplingParamsSchema = z.object({
  temperature: z.number().optional(),
  top_p: z.number().optional(),
  top_k: z.number().optional(),
  max_tokens: z.number().optional(),
  stop: z.array(z.string()).optional(),
  top_logprobs: z.number().optional(),
  logprobs: z.boolean().optional(),
}) satisfies z.ZodType<SamplingParams>;

/** JSON has no -Infinity: JSON.stringify wrote an impossible token's logprob as null. */
const Logprob = z.union([z.number(), z.null().transform(() => Number.NEGATIVE_INFINITY)]);

export const TokenLogprobSchema = z.object({
  token: z.string(),
  logprob: Logprob,
  top: z.array(z.object({ token: z.string(), logprob: Logprob })).optional(),
}) satisfies z.ZodType<TokenLogprob, unknown>;

/** Any JSON value: payloads whose schema belongs to their writer (job specs, artifact metadata, the study). */
const JsonValue = z.unknown();

export const RequestStatusSchema = z.enum(["pending", "done", "failed"]);
export type RequestStatus = z.infer<typeof RequestStatusSchema>;

export const RequestRowSchema = z
  .object({
    id: z.string(),
    model_id: z.string(),
    experiment: z.string(),
    item_id: z.string(),
    messages_json: jsonText(ChatMessagesSchema),
    params_json: jsonText(SamplingParamsSchema),
    n: z.number().int(),
    seed: z.number().int().nullable(),
    cache_key: z.string(),
    /** Explicit per-sample seeds (interp's sweeps); null: sample i's seed derives from `seed` and i. */
    sample_seeds_json: jsonText(z.array(z.number().int())).nullable().optional(),
    status: RequestStatusSchema,
    error: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .transform(({ messages_json, params_json, sample_seeds_json, ...r }) => ({
    ...r,
    messages: messages_json,
    params: params_json,
    sample_seeds: sample_seeds_json ?? null,
  }));
export type RequestRow = z.infer<typeof RequestRowSchema>;

export const CompletionRowSchema = z
  .object({
    request_id: z.string(),
    sample_index: z.number().int(),
    text: z.string(),
    finish_reason: z.string(),
    logprobs_json: jsonText(z.array(TokenLogprobSchema)).nullable(),
    completion_tokens: z.number().int().nullable(),
    latency_ms: z.number().nullable(),
    cached: z.number().int(),
    call_id: z.number().int().nullable(),
    created_at: z.string(),
  })
  .transform(({ logprobs_json, ...r }) => ({ ...r, logprobs: logprobs_json }));
export type CompletionRow = z.infer<typeof CompletionRowSchema>;

export const CallOutcomeSchema = z.enum(["ok", "retry", "failed", "aborted"]);

/** One attempt at the provider: retries are counted from these. */
export const CallRowSchema = z.object({
  id: z.number().int(),
  request_id: z.string(),
  attempt: z.number().int(),
  sample_indices: z.string(),
  outcome: CallOutcomeSchema,
  error_kind: z.string().nullable(),
  http_status: z.number().int().nullable(),
  error: z.string().nullable(),
  response_id: z.string().nullable(),
  latency_ms: z.number().nullable(),
  prompt_tokens: z.number().int().nullable(),
  completion_tokens: z.number().int().nullable(),
  cost_usd: z.number().nullable(),
  started_at: z.string(),
});
export type CallRow = z.infer<typeof CallRowSchema>;

export const JudgmentRowSchema = z.object({
  id: z.number().int(),
  request_id: z.string(),
  sample_index: z.number().int(),
  judge_model_id: z.string(),
  metric: z.string(),
  score: z.number().nullable(),
  /** How the score was read: logprobs | json | text | unparsed | refusal ... */
  method: z.string(),
  raw: z.string(),
  judge_request_id: z.string().nullable(),
  created_at: z.string(),
});
export type JudgmentRow = z.infer<typeof JudgmentRowSchema>;

/** A long job (a provider batch, a fine-tune): `spec` and `result` are its kind's own JSON. */
export const JobRowSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    status: z.enum(["pending", "running", "done", "failed"]),
    spec_json: jsonText(JsonValue),
    result_json: jsonText(JsonValue).nullable(),
    error: z.string().nullable(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
  })
  .transform(({ spec_json, result_json, ...r }) => ({ ...r, spec: spec_json, result: result_json }));
export type JobRow = z.infer<typeof JobRowSchema>;

export const ArtifactRowSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    path: z.string(),
    sha256: z.string().nullable(),
    meta_json: jsonText(JsonValue).nullable(),
    created_at: z.string(),
  })
  .transform(({ meta_json, ...r }) => ({ ...r, meta: meta_json }));
export type ArtifactRow = z.infer<typeof ArtifactRowSchema>;

/** The study as the run declared it; `config` is checked by its reader (studySchema()), which may be a newer emlab. */
export const StudyRowSchema = z
  .object({
    name: z.string(),
    config_json: jsonText(JsonValue),
    config_hash: z.string(),
    source_path: z.string(),
    source_text: z.string(),
    created_at: z.string(),
  })
  .transform(({ config_json, ...r }) => ({ ...r, config: config_json }));
export type StudyRow = z.infer<typeof StudyRowSchema>;

export const ModelRowSchema = z
  .object({
    id: z.string(),
    provider: z.string(),
    model: z.string(),
    base_url: z.string().nullable(),
    roles_json: jsonText(z.array(z.string())),
  })
  .transform(({ roles_json, ...r }) => ({ ...r, roles: roles_json }));
export type ModelRow = z.infer<typeof ModelRowSchema>;

/** A completion with its request's identity: the rows the viewer's sample index is built from. */
export const SampleRowSchema = z.object({
  request_id: z.string(),
  model_id: z.string(),
  experiment: z.string(),
  item_id: z.string(),
  sample_index: z.number().int(),
  text: z.string(),
});
export type SampleRow = z.infer<typeof SampleRowSchema> & { messages: ChatMessage[] };

/** The messages column alone (decoded once per request when samples are read in bulk). */
export const MessagesColumnSchema = z
  .object({ id: z.string(), messages_json: jsonText(ChatMessagesSchema) })
  .transform((r) => r.messages_json);

/** A judged sample with its mean score over judges (one experiment, one metric). */
export const ScoredSampleRowSchema = z
  .object({
    request_id: z.string(),
    model_id: z.string(),
    item_id: z.string(),
    messages_json: jsonText(ChatMessagesSchema),
    sample_index: z.number().int(),
    text: z.string(),
    score: z.number(),
  })
  .transform(({ messages_json, ...r }) => ({ ...r, messages: messages_json }));
export type ScoredSampleRow = z.infer<typeof ScoredSampleRowSchema>;

/** Mean judge score of one sample on one metric. */
export const MeanScoreRowSchema = z.object({
  request_id: z.string(),
  sample_index: z.number().int(),
  metric: z.string(),
  score: z.number(),
});
export type MeanScoreRow = z.infer<typeof MeanScoreRowSchema>;

/** A stored row that does not decode: the message names the store file, table, row and column. */
export class StoreRowError extends Error {}

/** Parses one raw row through its schema; `key` names the columns that identify the row. */
export function decodeRow<S extends z.ZodType>(
  schema: S,
  file: string,
  table: string,
  key: readonly string[],
  raw: unknown,
): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const [column, ...at] = issue.path.map(String);
  const row = key.map((k) => `${k}=${JSON.stringify((raw as Record<string, unknown>)?.[k])}`).join(", ");
  throw new StoreRowError(
    `${file}: ${table} row ${row}, column ${column ?? "?"}${at.length ? ` at ${at.join(".")}` : ""}: ${issue.message}`,
  );
}

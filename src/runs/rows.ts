import { z } from "zod";

/**
 * Rows of the run store. The SQL in migrations.ts creates the tables; these schemas are
 * what every read is parsed through, so a store written by another version fails loudly.
 */

export const RequestStatusSchema = z.enum(["pending", "done", "failed"]);
export type RequestStatus = z.infer<typeof RequestStatusSchema>;

export const RequestRowSchema = z.object({
  id: z.string(),
  model_id: z.string(),
  experiment: z.string(),
  item_id: z.string(),
  messages_json: z.string(),
  params_json: z.string(),
  n: z.number().int(),
  seed: z.number().int().nullable(),
  cache_key: z.string(),
  status: RequestStatusSchema,
  error: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type RequestRow = z.infer<typeof RequestRowSchema>;

export const CompletionRowSchema = z.object({
  request_id: z.string(),
  sample_index: z.number().int(),
  text: z.string(),
  finish_reason: z.string(),
  logprobs_json: z.string().nullable(),
  completion_tokens: z.number().int().nullable(),
  latency_ms: z.number().nullable(),
  cached: z.number().int(),
  call_id: z.number().int().nullable(),
  created_at: z.string(),
});
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

export const JobRowSchema = z.object({
  id: z.string(),
  kind: z.string(),
  status: z.enum(["pending", "running", "done", "failed"]),
  spec_json: z.string(),
  result_json: z.string().nullable(),
  error: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
});
export type JobRow = z.infer<typeof JobRowSchema>;

export const ArtifactRowSchema = z.object({
  id: z.string(),
  kind: z.string(),
  path: z.string(),
  sha256: z.string().nullable(),
  meta_json: z.string().nullable(),
  created_at: z.string(),
});
export type ArtifactRow = z.infer<typeof ArtifactRowSchema>;

export const StudyRowSchema = z.object({
  name: z.string(),
  config_json: z.string(),
  config_hash: z.string(),
  source_path: z.string(),
  source_text: z.string(),
  created_at: z.string(),
});
export type StudyRow = z.infer<typeof StudyRowSchema>;

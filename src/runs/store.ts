import { mkdirSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { MIGRATIONS, SCHEMA_VERSION } from "./migrations.ts";
import {
  type ArtifactRow,
  ArtifactRowSchema,
  type CallRow,
  CallRowSchema,
  type CompletionRow,
  CompletionRowSchema,
  type JobRow,
  JobRowSchema,
  type JudgmentRow,
  JudgmentRowSchema,
  type RequestRow,
  RequestRowSchema,
  type StudyRow,
  StudyRowSchema,
} from "./rows.ts";

export const STORE_FILE = "run.sqlite";

const now = () => new Date().toISOString();

export type NewRequest = Omit<RequestRow, "status" | "error" | "created_at" | "updated_at">;
export type NewCall = Omit<CallRow, "id" | "started_at"> & { started_at?: string };
export type NewCompletion = Omit<CompletionRow, "created_at" | "call_id">;

export interface PendingWork {
  request: RequestRow;
  /** Sample indices in [0, n) with no stored completion. */
  missing: number[];
}

export interface StoreCounts {
  requests: number;
  requestsDone: number;
  requestsFailed: number;
  samplesExpected: number;
  completions: number;
  cachedCompletions: number;
  calls: number;
  retries: number;
  failedCalls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/**
 * The run store: one SQLite file per run directory, in WAL mode. Every completion is
 * committed (with the call that produced it) before the scheduler moves on, so a killed
 * run resumes exactly where it stopped.
 */
export class RunStore {
  readonly db: Database.Database;
  readonly dir: string;

  private constructor(dir: string, db: Database.Database) {
    this.dir = dir;
    this.db = db;
  }

  static open(dir: string, opts: { create?: boolean; readonly?: boolean } = {}): RunStore {
    const file = path.join(dir, STORE_FILE);
    if (opts.create) mkdirSync(dir, { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(file, { fileMustExist: !opts.create, readonly: opts.readonly ?? false });
    } catch (e) {
      throw new Error(`${file}: cannot open run store (${(e as Error).message})`);
    }
    if (!opts.readonly) {
      db.pragma("journal_mode = WAL");
      // NORMAL in WAL mode survives a killed process (not a power cut) and is much faster than FULL.
      db.pragma("synchronous = NORMAL");
    }
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    const store = new RunStore(dir, db);
    store.migrate(file, opts.readonly ?? false);
    return store;
  }

  private migrate(file: string, readonly: boolean): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION)
      throw new Error(
        `${file}: store schema v${version} is newer than this emlab (v${SCHEMA_VERSION}); upgrade emlab`,
      );
    if (version === SCHEMA_VERSION) return;
    if (readonly)
      throw new Error(`${file}: store schema v${version} needs migrating; open it once without --readonly`);
    const step = this.db.transaction((from: number) => {
      for (let v = from; v < SCHEMA_VERSION; v++) this.db.exec(MIGRATIONS[v]);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    });
    step(version);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // --- study -------------------------------------------------------------------------

  setStudy(row: Omit<StudyRow, "created_at">): void {
    this.db
      .prepare(
        `INSERT INTO study (id, name, config_json, config_hash, source_path, source_text, created_at)
         VALUES (1, @name, @config_json, @config_hash, @source_path, @source_text, @created_at)`,
      )
      .run({ ...row, created_at: now() });
  }

  getStudy(): StudyRow | undefined {
    const row = this.db
      .prepare("SELECT name, config_json, config_hash, source_path, source_text, created_at FROM study")
      .get();
    return row ? StudyRowSchema.parse(row) : undefined;
  }

  upsertModel(m: { id: string; provider: string; model: string; base_url?: string; roles: string[] }): void {
    this.db
      .prepare(
        `INSERT INTO models (id, provider, model, base_url, roles_json) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, model = excluded.model,
           base_url = excluded.base_url, roles_json = excluded.roles_json`,
      )
      .run(m.id, m.provider, m.model, m.base_url ?? null, JSON.stringify(m.roles));
  }

  // --- requests and completions -------------------------------------------------------

  /** Inserts planned requests; ones already present (same id) are left as they are. */
  addRequests(rows: NewRequest[]): number {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO requests
         (id, model_id, experiment, item_id, messages_json, params_json, n, seed, cache_key, status, error, created_at, updated_at)
       VALUES (@id, @model_id, @experiment, @item_id, @messages_json, @params_json, @n, @seed, @cache_key, 'pending', NULL, @t, @t)`,
    );
    let added = 0;
    this.db.transaction(() => {
      const t = now();
      for (const r of rows) added += insert.run({ ...r, t }).changes;
    })();
    return added;
  }

  getRequest(id: string): RequestRow | undefined {
    const row = this.db.prepare("SELECT * FROM requests WHERE id = ?").get(id);
    return row ? RequestRowSchema.parse(row) : undefined;
  }

  listRequests(filter: { experiment?: string; modelId?: string } = {}): RequestRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM requests WHERE (@experiment IS NULL OR experiment = @experiment)
           AND (@model IS NULL OR model_id = @model) ORDER BY rowid`,
      )
      .all({ experiment: filter.experiment ?? null, model: filter.modelId ?? null });
    return rows.map((r) => RequestRowSchema.parse(r));
  }

  /** Failed requests go back to pending: a resumed run tries them again. */
  resetFailed(): number {
    return this.db
      .prepare("UPDATE requests SET status = 'pending', error = NULL, updated_at = ? WHERE status = 'failed'")
      .run(now()).changes;
  }

  /**
   * Requests that still lack completions, in planning order, with the missing sample indices;
   * `only` restricts them to the ids a run planned (rows left by an older plan are not run).
   */
  pendingWork(only?: ReadonlySet<string>): PendingWork[] {
    const rows = this.db
      .prepare(
        `SELECT r.*, (SELECT group_concat(sample_index) FROM completions c WHERE c.request_id = r.id) AS have
         FROM requests r WHERE r.status = 'pending' ORDER BY r.rowid`,
      )
      .all() as Array<Record<string, unknown> & { have: string | null }>;
    return rows
      .filter((r) => !only || only.has(r.id as string))
      .map(({ have, ...rest }) => {
        const request = RequestRowSchema.parse(rest);
        const got = new Set((have ?? "").split(",").filter(Boolean).map(Number));
        const missing: number[] = [];
        for (let i = 0; i < request.n; i++) if (!got.has(i)) missing.push(i);
        return { request, missing };
      });
  }

  recordCall(call: NewCall): number {
    const info = this.db
      .prepare(
        `INSERT INTO calls (request_id, attempt, sample_indices, outcome, error_kind, http_status, error, response_id,
           latency_ms, prompt_tokens, completion_tokens, cost_usd, started_at)
         VALUES (@request_id, @attempt, @sample_indices, @outcome, @error_kind, @http_status, @error, @response_id,
           @latency_ms, @prompt_tokens, @completion_tokens, @cost_usd, @started_at)`,
      )
      .run({ ...call, started_at: call.started_at ?? now() });
    return Number(info.lastInsertRowid);
  }

  /**
   * The unit of durability: the call and the completions it produced, in one transaction;
   * the request is marked done once all its samples are there.
   */
  saveCompletions(requestId: string, call: NewCall | null, completions: NewCompletion[]): void {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO completions
         (request_id, sample_index, text, finish_reason, logprobs_json, completion_tokens, latency_ms, cached, call_id, created_at)
       VALUES (@request_id, @sample_index, @text, @finish_reason, @logprobs_json, @completion_tokens, @latency_ms, @cached, @call_id, @t)`,
    );
    this.db.transaction(() => {
      const callId = call ? this.recordCall(call) : null;
      const t = now();
      for (const c of completions) insert.run({ ...c, request_id: requestId, call_id: callId, t });
      this.db
        .prepare(
          `UPDATE requests SET status = 'done', updated_at = ?
           WHERE id = ? AND n <= (SELECT count(*) FROM completions WHERE request_id = ?)`,
        )
        .run(t, requestId, requestId);
    })();
  }

  markFailed(requestId: string, error: string, call: NewCall | null): void {
    this.db.transaction(() => {
      if (call) this.recordCall(call);
      this.db
        .prepare("UPDATE requests SET status = 'failed', error = ?, updated_at = ? WHERE id = ?")
        .run(error, now(), requestId);
    })();
  }

  completions(requestId: string): CompletionRow[] {
    return this.db
      .prepare("SELECT * FROM completions WHERE request_id = ? ORDER BY sample_index")
      .all(requestId)
      .map((r) => CompletionRowSchema.parse(r));
  }

  calls(requestId?: string): CallRow[] {
    const rows = requestId
      ? this.db.prepare("SELECT * FROM calls WHERE request_id = ? ORDER BY id").all(requestId)
      : this.db.prepare("SELECT * FROM calls ORDER BY id").all();
    return rows.map((r) => CallRowSchema.parse(r));
  }

  counts(): StoreCounts {
    const r = this.db
      .prepare(
        `SELECT count(*) AS requests,
           coalesce(sum(status = 'done'), 0) AS done, coalesce(sum(status = 'failed'), 0) AS failed,
           coalesce(sum(n), 0) AS expected FROM requests`,
      )
      .get() as { requests: number; done: number; failed: number; expected: number };
    const c = this.db
      .prepare("SELECT count(*) AS n, coalesce(sum(cached), 0) AS cached FROM completions")
      .get() as { n: number; cached: number };
    const k = this.db
      .prepare(
        `SELECT count(*) AS calls, coalesce(sum(outcome = 'retry'), 0) AS retries, coalesce(sum(outcome = 'failed'), 0) AS failed,
           coalesce(sum(prompt_tokens), 0) AS pt, coalesce(sum(completion_tokens), 0) AS ct, coalesce(sum(cost_usd), 0) AS cost
         FROM calls`,
      )
      .get() as { calls: number; retries: number; failed: number; pt: number; ct: number; cost: number };
    return {
      requests: r.requests,
      requestsDone: r.done,
      requestsFailed: r.failed,
      samplesExpected: r.expected,
      completions: c.n,
      cachedCompletions: c.cached,
      calls: k.calls,
      retries: k.retries,
      failedCalls: k.failed,
      promptTokens: k.pt,
      completionTokens: k.ct,
      costUsd: k.cost,
    };
  }

  /** Per model: expected samples, stored completions, retries and failures. */
  countsByModel(): Array<{
    model_id: string;
    expected: number;
    completions: number;
    failed: number;
    retries: number;
  }> {
    return this.db
      .prepare(
        `SELECT r.model_id,
           sum(r.n) AS expected,
           sum((SELECT count(*) FROM completions c WHERE c.request_id = r.id)) AS completions,
           sum(r.status = 'failed') AS failed,
           sum((SELECT count(*) FROM calls k WHERE k.request_id = r.id AND k.outcome = 'retry')) AS retries
         FROM requests r GROUP BY r.model_id ORDER BY r.model_id`,
      )
      .all() as Array<{
      model_id: string;
      expected: number;
      completions: number;
      failed: number;
      retries: number;
    }>;
  }

  failedRequests(limit = 20): Array<Pick<RequestRow, "id" | "model_id" | "item_id" | "error">> {
    return this.db
      .prepare(
        "SELECT id, model_id, item_id, error FROM requests WHERE status = 'failed' ORDER BY updated_at LIMIT ?",
      )
      .all(limit) as Array<Pick<RequestRow, "id" | "model_id" | "item_id" | "error">>;
  }

  // --- judgments, jobs, artifacts -----------------------------------------------------

  saveJudgment(j: Omit<JudgmentRow, "id" | "created_at">): void {
    this.db
      .prepare(
        `INSERT INTO judgments (request_id, sample_index, judge_model_id, metric, score, method, raw, judge_request_id, created_at)
         VALUES (@request_id, @sample_index, @judge_model_id, @metric, @score, @method, @raw, @judge_request_id, @t)
         ON CONFLICT (request_id, sample_index, judge_model_id, metric) DO UPDATE SET
           score = excluded.score, method = excluded.method, raw = excluded.raw, judge_request_id = excluded.judge_request_id`,
      )
      .run({ ...j, t: now() });
  }

  judgments(filter: { requestId?: string; metric?: string } = {}): JudgmentRow[] {
    return this.db
      .prepare(
        `SELECT * FROM judgments WHERE (@req IS NULL OR request_id = @req) AND (@metric IS NULL OR metric = @metric)
         ORDER BY id`,
      )
      .all({ req: filter.requestId ?? null, metric: filter.metric ?? null })
      .map((r) => JudgmentRowSchema.parse(r));
  }

  upsertJob(
    job: Omit<JobRow, "started_at" | "finished_at"> & {
      started_at?: string | null;
      finished_at?: string | null;
    },
  ): void {
    this.db
      .prepare(
        `INSERT INTO jobs (id, kind, status, spec_json, result_json, error, started_at, finished_at)
         VALUES (@id, @kind, @status, @spec_json, @result_json, @error, @started_at, @finished_at)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, spec_json = excluded.spec_json,
           result_json = excluded.result_json,
           error = excluded.error, started_at = coalesce(jobs.started_at, excluded.started_at),
           finished_at = excluded.finished_at`,
      )
      .run({ started_at: null, finished_at: null, ...job });
  }

  listJobs(kind?: string): JobRow[] {
    return this.db
      .prepare("SELECT * FROM jobs WHERE (@kind IS NULL OR kind = @kind) ORDER BY rowid")
      .all({ kind: kind ?? null })
      .map((r) => JobRowSchema.parse(r));
  }

  getJob(id: string): JobRow | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id);
    return row ? JobRowSchema.parse(row) : undefined;
  }

  addArtifact(a: Omit<ArtifactRow, "created_at">): void {
    this.db
      .prepare(
        `INSERT INTO artifacts (id, kind, path, sha256, meta_json, created_at) VALUES (@id, @kind, @path, @sha256, @meta_json, @t)
         ON CONFLICT (id) DO UPDATE SET path = excluded.path, sha256 = excluded.sha256, meta_json = excluded.meta_json`,
      )
      .run({ ...a, t: now() });
  }

  artifacts(kind?: string): ArtifactRow[] {
    return this.db
      .prepare("SELECT * FROM artifacts WHERE (@kind IS NULL OR kind = @kind) ORDER BY created_at")
      .all({ kind: kind ?? null })
      .map((r) => ArtifactRowSchema.parse(r));
  }
}

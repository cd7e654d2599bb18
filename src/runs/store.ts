import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, rmSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { z } from "zod";
import { InputError } from "../config/load.ts";
import type { ChatMessage } from "../models/types.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "./migrations.ts";
import {
  type ArtifactRow,
  ArtifactRowSchema,
  type CallRow,
  CallRowSchema,
  type CompletionRow,
  CompletionRowSchema,
  decodeRow,
  FILTERED_FINISH,
  type JobRow,
  JobRowSchema,
  type JudgmentRow,
  JudgmentRowSchema,
  type MeanScoreRow,
  MeanScoreRowSchema,
  MessagesColumnSchema,
  type ModelRow,
  ModelRowSchema,
  type RequestRow,
  RequestRowSchema,
  type SampleRow,
  SampleRowSchema,
  type ScoredSampleRow,
  ScoredSampleRowSchema,
  type StudyRow,
  StudyRowSchema,
} from "./rows.ts";

export const STORE_FILE = "run.sqlite";

const now = () => new Date().toISOString();

export type NewRequest = Omit<
  RequestRow,
  "status" | "error" | "created_at" | "updated_at" | "sample_seeds"
> & {
  /** Explicit per-sample seeds (length n), honoured by the scheduler; default: derived from `seed`. */
  sample_seeds?: number[] | null;
};
export type NewCall = Omit<CallRow, "id" | "started_at"> & { started_at?: string };
export type NewCompletion = Omit<CompletionRow, "created_at" | "call_id">;
export type NewJob = Omit<JobRow, "started_at" | "finished_at"> & {
  started_at?: string | null;
  finished_at?: string | null;
};

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
  /** Completions the provider withheld for their content (finish reason FILTERED_FINISH). */
  filteredCompletions: number;
  judgments: number;
  calls: number;
  retries: number;
  failedCalls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/** The tables every emlab store has had since schema v1 (migrations.ts). */
const STORE_TABLES = [
  "study",
  "models",
  "requests",
  "calls",
  "completions",
  "judgments",
  "jobs",
  "artifacts",
];
const SQLITE_HEADER = "SQLite format 3\0";
const RESTORE = "restore it from a copy, or start a new run with another --out";

const newerSchema = (version: number) =>
  `store schema v${version} is newer than this emlab (v${SCHEMA_VERSION}): the run was made by a newer emlab; upgrade emlab to read it, or start a new run with another --out`;

/**
 * Checks an existing store file without writing to it: the SQLite header read by hand, then
 * a read-only connection runs `PRAGMA quick_check` and looks at the tables and
 * `user_version`. A file that is not SQLite (random bytes, a zeroed header, cut short), a
 * damaged one (truncated, a bad page), a SQLite database that is not an emlab store, or one
 * of a newer schema is bad input naming the file and what to do. The sidecar files
 * (`-wal`, `-shm`) the read-only connection makes beside a WAL-mode file are removed again
 * when it is refused, so a refused store is left exactly as it was found. An empty file is
 * an empty database (a store killed before its schema was written): it passes.
 */
function checkStoreFile(file: string): void {
  const problem = storeFileProblem(file);
  if (problem) throw new InputError([{ file, message: problem }]);
}

function storeFileProblem(file: string): string | null {
  const header = Buffer.alloc(100);
  let size: number;
  let got: number;
  try {
    const fd = openSync(file, "r");
    try {
      size = fstatSync(fd).size;
      got = readSync(fd, header, 0, header.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new Error(`${file}: cannot open run store (${(e as Error).message})`);
  }
  if (size === 0) return null;
  if (got < header.length || header.toString("latin1", 0, SQLITE_HEADER.length) !== SQLITE_HEADER)
    return `is damaged or not a run store: not a SQLite database (${got < header.length ? `cut short at ${got} bytes` : "no SQLite header"}); ${RESTORE}`;
  const madeHere = ["-wal", "-shm"].map((ext) => `${file}${ext}`).filter((f) => !existsSync(f));
  let problem: string | null = null;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const check = db.pragma("quick_check(1)", { simple: true });
    if (check !== "ok") {
      const what = String(check).replace("*** in database main ***", "").replace(/\s+/g, " ").trim();
      problem = `the run store is damaged (quick_check: ${what}); ${RESTORE}`;
    } else {
      const tables = new Set(
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[],
      );
      const version = db.pragma("user_version", { simple: true }) as number;
      const missing = STORE_TABLES.filter((t) => !tables.has(t));
      if (version === 0 && tables.size === 0)
        problem = null; // the schema not yet written
      else if (version === 0 || !tables.has("study") || !tables.has("requests"))
        problem = `is not an emlab run store: a SQLite database without emlab's tables (study, requests, ...); ${RESTORE}`;
      else if (version > SCHEMA_VERSION) problem = newerSchema(version);
      else if (missing.length > 0)
        problem = `the run store is damaged (table${missing.length > 1 ? "s" : ""} ${missing.join(", ")} missing); ${RESTORE}`;
    }
  } catch (e) {
    const code = String((e as { code?: unknown }).code ?? "");
    if (!code.startsWith("SQLITE_CORRUPT") && !code.startsWith("SQLITE_NOTADB"))
      throw new Error(`${file}: cannot open run store (${(e as Error).message})`);
    problem = `the run store is damaged (${(e as Error).message}); ${RESTORE}`;
  } finally {
    db?.close();
  }
  if (problem) for (const f of madeHere) rmSync(f, { force: true });
  return problem;
}

/**
 * The run store: one SQLite file per run directory, in WAL mode. Every completion is
 * committed (with the call that produced it) before the scheduler moves on, so a killed
 * run resumes exactly where it stopped.
 */
export class RunStore {
  /** Only the store runs SQL on its file: everything else goes through the methods below. */
  private readonly db: Database.Database;
  readonly dir: string;
  /** The SQLite file, named in errors. */
  private readonly file: string;

  private constructor(dir: string, db: Database.Database) {
    this.dir = dir;
    this.file = path.join(dir, STORE_FILE);
    this.db = db;
  }

  /**
   * Opens the store in `dir` (`create`: a new one where there is none). An existing file is
   * checked first, read-only, before any connection that writes (WAL mode, migrations) is
   * made: one that is not SQLite, is damaged, is not an emlab store or is of a newer schema is
   * bad input naming the file and what to do, and is left exactly as it was (checkStoreFile).
   */
  static open(dir: string, opts: { create?: boolean; readonly?: boolean } = {}): RunStore {
    const file = path.join(dir, STORE_FILE);
    if (opts.create) mkdirSync(dir, { recursive: true });
    if (existsSync(file)) checkStoreFile(file);
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
    try {
      store.migrate(file, opts.readonly ?? false);
    } catch (e) {
      db.close();
      throw e;
    }
    return store;
  }

  private migrate(file: string, readonly: boolean): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new InputError([{ file, message: newerSchema(version) }]);
    if (version === SCHEMA_VERSION) return;
    // Readers (status, report, view) never write: they say which command brings the store up to date.
    if (readonly)
      throw new InputError([
        {
          file,
          message:
            version === 0
              ? `holds no run yet: its run was killed while it was being created, before anything was stored; \`emlab run STUDY.yaml --out ${this.dir} --resume\` finishes creating it`
              : `store schema v${version} was written by an older emlab (this one uses v${SCHEMA_VERSION}); \`emlab run STUDY.yaml --out ${this.dir} --resume\` upgrades it, and then this command reads it`,
        },
      ]);
    const step = this.db.transaction((from: number) => {
      for (let v = from; v < SCHEMA_VERSION; v++) this.db.exec(MIGRATIONS[v]);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    });
    step(version);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Runs `fn` as one transaction: every write in it lands together or not at all (and many
   * small writes commit once). Store methods inside it nest as savepoints.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** A raw row through its schema; a row that does not decode is an error naming file, table, row and column. */
  private decode<S extends z.ZodType>(
    schema: S,
    table: string,
    key: readonly string[],
    raw: unknown,
  ): z.output<S> {
    return decodeRow(schema, this.file, table, key, raw);
  }

  // --- study -------------------------------------------------------------------------

  setStudy(row: Omit<StudyRow, "created_at">): void {
    this.db
      .prepare(
        `INSERT INTO study (id, name, config_json, config_hash, source_path, source_text, created_at)
         VALUES (1, @name, @config_json, @config_hash, @source_path, @source_text, @created_at)`,
      )
      .run({
        name: row.name,
        config_json: JSON.stringify(row.config),
        config_hash: row.config_hash,
        source_path: row.source_path,
        source_text: row.source_text,
        created_at: now(),
      });
  }

  getStudy(): StudyRow | undefined {
    const row = this.db
      .prepare("SELECT id, name, config_json, config_hash, source_path, source_text, created_at FROM study")
      .get();
    return row ? this.decode(StudyRowSchema, "study", ["id"], row) : undefined;
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

  /** The model entries the run recorded, in the order they were first stored. */
  models(): ModelRow[] {
    return this.db
      .prepare("SELECT id, provider, model, base_url, roles_json FROM models ORDER BY rowid")
      .all()
      .map((r) => this.decode(ModelRowSchema, "models", ["id"], r));
  }

  // --- requests and completions -------------------------------------------------------

  /** Inserts planned requests; ones already present (same id) are left as they are. */
  addRequests(rows: NewRequest[]): number {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO requests
         (id, model_id, experiment, item_id, messages_json, params_json, n, seed, cache_key, sample_seeds_json, status, error, created_at, updated_at)
       VALUES (@id, @model_id, @experiment, @item_id, @messages_json, @params_json, @n, @seed, @cache_key, @sample_seeds_json, 'pending', NULL, @t, @t)`,
    );
    let added = 0;
    this.db.transaction(() => {
      const t = now();
      for (const r of rows)
        added += insert.run({
          id: r.id,
          model_id: r.model_id,
          experiment: r.experiment,
          item_id: r.item_id,
          messages_json: JSON.stringify(r.messages),
          params_json: JSON.stringify(r.params),
          n: r.n,
          seed: r.seed,
          cache_key: r.cache_key,
          sample_seeds_json: r.sample_seeds ? JSON.stringify(r.sample_seeds) : null,
          t,
        }).changes;
    })();
    return added;
  }

  getRequest(id: string): RequestRow | undefined {
    const row = this.db.prepare("SELECT * FROM requests WHERE id = ?").get(id);
    return row ? this.decode(RequestRowSchema, "requests", ["id"], row) : undefined;
  }

  listRequests(filter: { experiment?: string; modelId?: string } = {}): RequestRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM requests WHERE (@experiment IS NULL OR experiment = @experiment)
           AND (@model IS NULL OR model_id = @model) ORDER BY rowid`,
      )
      .all({ experiment: filter.experiment ?? null, model: filter.modelId ?? null });
    return rows.map((r) => this.decode(RequestRowSchema, "requests", ["id"], r));
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
        const request = this.decode(RequestRowSchema, "requests", ["id"], rest);
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
      for (const c of completions)
        insert.run({
          request_id: requestId,
          sample_index: c.sample_index,
          text: c.text,
          finish_reason: c.finish_reason,
          logprobs_json: c.logprobs === null ? null : JSON.stringify(c.logprobs),
          completion_tokens: c.completion_tokens,
          latency_ms: c.latency_ms,
          cached: c.cached,
          call_id: callId,
          t,
        });
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
      .map((r) => this.decode(CompletionRowSchema, "completions", ["request_id", "sample_index"], r));
  }

  calls(requestId?: string): CallRow[] {
    const rows = requestId
      ? this.db.prepare("SELECT * FROM calls WHERE request_id = ? ORDER BY id").all(requestId)
      : this.db.prepare("SELECT * FROM calls ORDER BY id").all();
    return rows.map((r) => this.decode(CallRowSchema, "calls", ["id"], r));
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
      .prepare(
        `SELECT count(*) AS n, coalesce(sum(cached), 0) AS cached, coalesce(sum(finish_reason = ?), 0) AS filtered
         FROM completions`,
      )
      .get(FILTERED_FINISH) as { n: number; cached: number; filtered: number };
    const j = this.db.prepare("SELECT count(*) AS n FROM judgments").get() as { n: number };
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
      filteredCompletions: c.filtered,
      judgments: j.n,
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

  // --- bulk reads: the viewer's sample index, the report ---------------------------------

  /** A stamp that changes whenever completions, judgments or requests change. */
  changeStamp(): string {
    const c = this.db
      .prepare("SELECT count(*) AS n, coalesce(max(rowid), 0) AS m FROM completions")
      .get() as {
      n: number;
      m: number;
    };
    // Judgments are upserted in place, so ids alone miss a re-judged sample: fold in score and reply.
    const j = this.db
      .prepare(
        "SELECT count(*) AS n, coalesce(max(id), 0) AS m, total(score) AS s, total(length(raw)) AS r FROM judgments",
      )
      .get() as { n: number; m: number; s: number; r: number };
    const r = this.db.prepare("SELECT count(*) AS n FROM requests").get() as { n: number };
    return `c${c.n}/${c.m}:j${j.n}/${j.m}/${j.s}/${j.r}:r${r.n}`;
  }

  /**
   * Every stored completion with its request's identity and messages, in planning order
   * (request, then sample index). Rows stream from the file; a request's messages are decoded
   * once and shared by its samples.
   */
  *samples(): Generator<SampleRow> {
    const rows = this.db
      .prepare(
        `SELECT r.id AS request_id, r.model_id, r.experiment, r.item_id, r.messages_json, c.sample_index, c.text
         FROM completions c JOIN requests r ON r.id = c.request_id
         ORDER BY r.rowid, c.sample_index`,
      )
      .iterate() as IterableIterator<{ request_id: string; messages_json: unknown }>;
    let lastRequest: string | undefined;
    let messages: ChatMessage[] = [];
    for (const raw of rows) {
      if (raw.request_id !== lastRequest) {
        messages = this.decode(MessagesColumnSchema, "requests", ["id"], {
          id: raw.request_id,
          messages_json: raw.messages_json,
        });
        lastRequest = raw.request_id;
      }
      // zod hands out a fresh object: it takes the messages without another copy.
      const row = this.decode(
        SampleRowSchema,
        "completions",
        ["request_id", "sample_index"],
        raw,
      ) as SampleRow;
      row.messages = messages;
      yield row;
    }
  }

  /** One score per judged sample and metric: the mean over the judges that gave one. */
  *meanScores(): Generator<MeanScoreRow> {
    const rows = this.db
      .prepare(
        `SELECT request_id, sample_index, metric, avg(score) AS score FROM judgments
         WHERE score IS NOT NULL GROUP BY request_id, sample_index, metric`,
      )
      .iterate();
    for (const raw of rows)
      yield this.decode(MeanScoreRowSchema, "judgments", ["request_id", "sample_index", "metric"], raw);
  }

  /**
   * The `perModel` highest-scored samples of each model on one experiment and metric (score:
   * the mean over judges; ties in planning order), by model id.
   */
  topScored(o: { experiment: string; metric: string; perModel: number }): ScoredSampleRow[] {
    const rows = this.db
      .prepare(
        `SELECT r.id AS request_id, r.model_id, r.item_id, r.messages_json,
                c.sample_index, c.text, avg(j.score) AS score
         FROM judgments j
         JOIN requests r ON r.id = j.request_id
         JOIN completions c ON c.request_id = j.request_id AND c.sample_index = j.sample_index
         WHERE r.experiment = ? AND j.metric = ? AND j.score IS NOT NULL
         GROUP BY r.id, c.sample_index
         ORDER BY r.model_id, score DESC, r.rowid, c.sample_index`,
      )
      .all(o.experiment, o.metric) as Array<{ model_id: string }>;
    const out: ScoredSampleRow[] = [];
    const kept = new Map<string, number>();
    for (const raw of rows) {
      const k = kept.get(raw.model_id) ?? 0;
      if (k >= o.perModel) continue;
      kept.set(raw.model_id, k + 1);
      out.push(this.decode(ScoredSampleRowSchema, "requests", ["request_id", "sample_index"], raw));
    }
    return out;
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
      .map((r) => this.decode(JudgmentRowSchema, "judgments", ["id"], r));
  }

  upsertJob(job: NewJob): void {
    this.db
      .prepare(
        `INSERT INTO jobs (id, kind, status, spec_json, result_json, error, started_at, finished_at)
         VALUES (@id, @kind, @status, @spec_json, @result_json, @error, @started_at, @finished_at)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, spec_json = excluded.spec_json,
           result_json = excluded.result_json,
           error = excluded.error, started_at = coalesce(jobs.started_at, excluded.started_at),
           finished_at = excluded.finished_at`,
      )
      .run({
        id: job.id,
        kind: job.kind,
        status: job.status,
        spec_json: JSON.stringify(job.spec ?? null),
        result_json: job.result == null ? null : JSON.stringify(job.result),
        error: job.error,
        started_at: job.started_at ?? null,
        finished_at: job.finished_at ?? null,
      });
  }

  listJobs(kind?: string): JobRow[] {
    return this.db
      .prepare("SELECT * FROM jobs WHERE (@kind IS NULL OR kind = @kind) ORDER BY rowid")
      .all({ kind: kind ?? null })
      .map((r) => this.decode(JobRowSchema, "jobs", ["id"], r));
  }

  getJob(id: string): JobRow | undefined {
    const row = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id);
    return row ? this.decode(JobRowSchema, "jobs", ["id"], row) : undefined;
  }

  addArtifact(a: Omit<ArtifactRow, "created_at">): void {
    this.db
      .prepare(
        `INSERT INTO artifacts (id, kind, path, sha256, meta_json, created_at) VALUES (@id, @kind, @path, @sha256, @meta_json, @t)
         ON CONFLICT (id) DO UPDATE SET path = excluded.path, sha256 = excluded.sha256, meta_json = excluded.meta_json`,
      )
      .run({
        id: a.id,
        kind: a.kind,
        path: a.path,
        sha256: a.sha256,
        meta_json: a.meta == null ? null : JSON.stringify(a.meta),
        t: now(),
      });
  }

  artifacts(kind?: string): ArtifactRow[] {
    return this.db
      .prepare("SELECT * FROM artifacts WHERE (@kind IS NULL OR kind = @kind) ORDER BY created_at")
      .all({ kind: kind ?? null })
      .map((r) => this.decode(ArtifactRowSchema, "artifacts", ["id"], r));
  }

  // --- interp: its stored requests and judgments ------------------------------------

  /** Many judgments in one transaction (upserted as saveJudgment does). */
  saveJudgments(rows: readonly Omit<JudgmentRow, "id" | "created_at">[]): void {
    this.db.transaction(() => {
      for (const j of rows) this.saveJudgment(j);
    })();
  }

  /** How many of these requests are marked failed. */
  failedAmong(ids: Iterable<string>): number {
    const status = this.db.prepare("SELECT status FROM requests WHERE id = ?").pluck();
    let failed = 0;
    for (const id of ids) if (status.get(id) === "failed") failed++;
    return failed;
  }

  /**
   * results.json's `counts` over the requests whose experiment does not start with `prefix`
   * (INTERP_EXPERIMENTS: the interp stage's own requests, and the judgments of their answers,
   * are left out, so the battery's counts are the same with or without them).
   */
  countsOutside(prefix: string): {
    requests: number;
    requestsFailed: number;
    completions: number;
    filteredCompletions: number;
    judgments: number;
  } {
    const outside = "substr(r.experiment, 1, length(@prefix)) <> @prefix";
    const r = this.db
      .prepare(
        `SELECT count(*) AS n, coalesce(sum(r.status = 'failed'), 0) AS failed FROM requests r WHERE ${outside}`,
      )
      .get({ prefix }) as { n: number; failed: number };
    const c = this.db
      .prepare(
        `SELECT count(*) AS n, coalesce(sum(c.finish_reason = @filtered), 0) AS filtered
         FROM completions c JOIN requests r ON r.id = c.request_id WHERE ${outside}`,
      )
      .get({ prefix, filtered: FILTERED_FINISH }) as { n: number; filtered: number };
    const j = this.db
      .prepare(
        `SELECT count(*) AS n FROM judgments j JOIN requests r ON r.id = j.request_id WHERE ${outside}`,
      )
      .get({ prefix }) as { n: number };
    return {
      requests: r.n,
      requestsFailed: r.failed,
      completions: c.n,
      filteredCompletions: c.filtered,
      judgments: j.n,
    };
  }
}

/** The prefix of the interp stage's experiment names (`interp.steering`, `interp.steering.judge`, ...). */
export const INTERP_EXPERIMENTS = "interp.";

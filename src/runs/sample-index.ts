import { existsSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { ChatMessage } from "../models/types.ts";
import type { RunStore } from "./store.ts";

/**
 * The sample index beside a run store (`viewer-index.sqlite`): one row per stored completion
 * with the columns the viewer's list filters on, averaged judge scores per metric, and an
 * FTS5 table over prompt + completion. The store itself is only ever read; the index is
 * rebuilt when the store's change stamp moves. Reading it is SampleIndex's typed methods.
 */

export const INDEX_FILE = "viewer-index.sqlite";
/** Bump when the index layout changes: older indexes are rebuilt. */
const INDEX_VERSION = 1;
/** List rows carry this much of the prompt and completion; the detail endpoint has all of it. */
export const SNIPPET_CHARS = 240;

const SCHEMA = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    model_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    item_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    completion TEXT NOT NULL,
    UNIQUE (request_id, sample_index)
  );
  CREATE INDEX samples_by_model ON samples (model_id, id);
  CREATE INDEX samples_by_experiment ON samples (experiment, id);
  CREATE INDEX samples_by_item ON samples (experiment, item_id);
  CREATE TABLE scores (
    sample_id INTEGER NOT NULL,
    metric TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (sample_id, metric)
  ) WITHOUT ROWID;
  CREATE INDEX scores_by_metric ON scores (metric, score, sample_id);
  CREATE VIRTUAL TABLE fts USING fts5(prompt, completion, content='', tokenize='unicode61 remove_diacritics 2');
`;

export interface IndexInfo {
  file: string;
  rebuilt: boolean;
  buildMs: number;
  samples: number;
}

export interface SampleFilter {
  models: string[];
  experiments: string[];
  /** Score range on one metric: samples without a score for it are left out. */
  metric?: string;
  min?: number;
  max?: number;
  /** Free text, matched against prompt + completion (all words, `word*` for a prefix). */
  q?: string;
}

export interface ListRow {
  id: number;
  request_id: string;
  sample_index: number;
  model_id: string;
  experiment: string;
  item_id: string;
  prompt: string;
  completion: string;
  scores: Record<string, number>;
}

export interface ListPage {
  offset: number;
  limit: number;
  after?: number;
  count: boolean;
}

/** Something that changes whenever completions, judgments or requests change. */
export function storeFingerprint(store: RunStore): string {
  return `v${INDEX_VERSION}:${store.changeStamp()}`;
}

/** Plain text of a chat message list (for search and the list's prompt column). */
export function messagesText(messages: readonly ChatMessage[]): { all: string; lastUser: string } {
  const parts: string[] = [];
  let lastUser = "";
  for (const m of messages) {
    parts.push(m.content);
    if (m.role === "user") lastUser = m.content;
  }
  return { all: parts.join("\n"), lastUser: lastUser || parts[parts.length - 1] || "" };
}

/**
 * User words → an FTS5 query of quoted terms (all must match), so no input can be FTS
 * syntax: `"` is doubled inside terms, a trailing `*` stays a prefix search.
 */
export function ftsQuery(q: string): string | null {
  const terms = q
    .split(/\s+/)
    .filter(Boolean)
    .map((t) => {
      const prefix = t.endsWith("*") && t.length > 1;
      const word = (prefix ? t.slice(0, -1) : t).replaceAll('"', '""');
      return `"${word}"${prefix ? "*" : ""}`;
    });
  return terms.length ? terms.join(" ") : null;
}

function where(f: SampleFilter): { sql: string; args: unknown[]; join: string } {
  const clauses: string[] = [];
  const args: unknown[] = [];
  let join = "";
  if (f.metric !== undefined) {
    join = "JOIN scores sc ON sc.sample_id = s.id AND sc.metric = ?";
    args.push(f.metric);
    if (f.min !== undefined) {
      clauses.push("sc.score >= ?");
      args.push(f.min);
    }
    if (f.max !== undefined) {
      clauses.push("sc.score <= ?");
      args.push(f.max);
    }
  }
  if (f.models.length) {
    clauses.push(`s.model_id IN (${f.models.map(() => "?").join(",")})`);
    args.push(...f.models);
  }
  if (f.experiments.length) {
    clauses.push(`s.experiment IN (${f.experiments.map(() => "?").join(",")})`);
    args.push(...f.experiments);
  }
  const fts = f.q ? ftsQuery(f.q) : null;
  if (fts) {
    clauses.push("s.id IN (SELECT rowid FROM fts WHERE fts MATCH ?)");
    args.push(fts);
  }
  return { sql: clauses.length ? `WHERE ${clauses.join(" AND ")}` : "", args, join };
}

function readFingerprint(file: string): string | null {
  if (!existsSync(file)) return null;
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'fingerprint'").get() as
        | { value: string }
        | undefined;
      return row?.value ?? null;
    } finally {
      db.close();
    }
  } catch {
    return null; // unreadable or half-written: rebuild
  }
}

/**
 * Builds the index for a run when it is missing or stale (or `force`). Builds go to a
 * temporary file renamed into place, so a killed build never leaves a half index.
 */
export function ensureIndex(store: RunStore, opts: { force?: boolean } = {}): IndexInfo {
  const file = path.join(store.dir, INDEX_FILE);
  const fingerprint = storeFingerprint(store);
  if (!opts.force && readFingerprint(file) === fingerprint) {
    const db = new Database(file, { readonly: true });
    const n = (db.prepare("SELECT count(*) AS n FROM samples").get() as { n: number }).n;
    db.close();
    return { file, rebuilt: false, buildMs: 0, samples: n };
  }
  const t0 = performance.now();
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  const db = new Database(tmp);
  let n = 0;
  try {
    db.pragma("journal_mode = OFF");
    db.pragma("synchronous = OFF");
    db.exec(SCHEMA);
    n = fillIndex(store, db);
    db.prepare(
      "INSERT INTO meta (key, value) VALUES ('fingerprint', ?), ('built_at', ?), ('build_ms', ?)",
    ).run(fingerprint, new Date().toISOString(), String(Math.round(performance.now() - t0)));
    db.exec("ANALYZE");
    db.close();
    renameSync(tmp, file);
  } catch (e) {
    if (db.open) db.close();
    rmSync(tmp, { force: true });
    throw new Error(`${file}: cannot build the viewer index (${(e as Error).message})`);
  }
  return { file, rebuilt: true, buildMs: performance.now() - t0, samples: n };
}

function fillIndex(store: RunStore, db: Database.Database): number {
  const insertSample = db.prepare(
    `INSERT INTO samples (id, request_id, sample_index, model_id, experiment, item_id, prompt, completion)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertFts = db.prepare("INSERT INTO fts (rowid, prompt, completion) VALUES (?, ?, ?)");
  let id = 0;
  let lastMessages: readonly ChatMessage[] | undefined;
  let prompt = { all: "", lastUser: "" };
  db.transaction(() => {
    // Samples in planning order; a request's samples share one decoded messages array.
    for (const r of store.samples()) {
      id++;
      if (r.messages !== lastMessages) {
        prompt = messagesText(r.messages);
        lastMessages = r.messages;
      }
      insertSample.run(
        id,
        r.request_id,
        r.sample_index,
        r.model_id,
        r.experiment,
        r.item_id,
        prompt.lastUser.slice(0, SNIPPET_CHARS),
        r.text.slice(0, SNIPPET_CHARS),
      );
      insertFts.run(id, prompt.all, r.text);
    }
    // One score per sample and metric: the mean over judges that gave one.
    const insertScore = db.prepare("INSERT INTO scores (sample_id, metric, score) VALUES (?, ?, ?)");
    const lookup = db.prepare("SELECT id FROM samples WHERE request_id = ? AND sample_index = ?").pluck();
    for (const s of store.meanScores()) {
      const sid = lookup.get(s.request_id, s.sample_index) as number | undefined;
      if (sid !== undefined) insertScore.run(sid, s.metric, s.score);
    }
  })();
  return id;
}

/** The sample index of a run, opened read-only: the viewer's list, filters and lookups. */
export class SampleIndex {
  readonly #db: Database.Database;
  readonly #scores: Database.Statement;
  readonly info: IndexInfo;

  private constructor(db: Database.Database, info: IndexInfo) {
    this.#db = db;
    this.info = info;
    this.#scores = db.prepare("SELECT metric, score FROM scores WHERE sample_id = ?");
  }

  /** Builds the index when it is missing or stale (or `rebuild`), then opens it read-only. */
  static open(store: RunStore, opts: { rebuild?: boolean } = {}): SampleIndex {
    const info = ensureIndex(store, { force: opts.rebuild });
    return new SampleIndex(new Database(info.file, { readonly: true, fileMustExist: true }), info);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  /** When the index was built (ISO time). */
  builtAt(): string {
    return this.#db.prepare("SELECT value FROM meta WHERE key = 'built_at'").pluck().get() as string;
  }

  meta(): { models: string[]; experiments: string[]; metrics: string[]; total: number } {
    const pluck = (sql: string) => this.#db.prepare(sql).pluck().all() as string[];
    return {
      models: pluck("SELECT DISTINCT model_id FROM samples ORDER BY model_id"),
      experiments: pluck("SELECT DISTINCT experiment FROM samples ORDER BY experiment"),
      metrics: pluck("SELECT DISTINCT metric FROM scores ORDER BY metric"),
      total: this.#db.prepare("SELECT count(*) FROM samples").pluck().get() as number,
    };
  }

  /**
   * One page of the filtered list in index order. `after` (the last id seen) pages by key,
   * `offset` jumps anywhere (what the virtualised list needs when the scrollbar is dragged).
   */
  list(
    f: SampleFilter,
    page: ListPage,
  ): { total: number | null; offset: number; rows: ListRow[]; next_after: number | null } {
    const w = where(f);
    let sql = w.sql;
    const args = [...w.args];
    // Index ids run 1..N without gaps, so an unfiltered offset is a key: no rows to skip over.
    const after = page.after ?? (sql || w.join ? undefined : page.offset);
    if (after !== undefined) {
      sql = sql ? `${sql} AND s.id > ?` : "WHERE s.id > ?";
      args.push(after);
    }
    const rows = this.#db
      .prepare(
        `SELECT s.id, s.request_id, s.sample_index, s.model_id, s.experiment, s.item_id, s.prompt, s.completion
         FROM samples s ${w.join} ${sql} ORDER BY s.id LIMIT ? OFFSET ?`,
      )
      .all(...args, page.limit, after !== undefined ? 0 : page.offset) as Array<Omit<ListRow, "scores">>;
    const total = page.count
      ? (this.#db
          .prepare(`SELECT count(*) FROM samples s ${w.join} ${w.sql}`)
          .pluck()
          .get(...w.args) as number)
      : null;
    const withScores = rows.map((r) => {
      const scores: Record<string, number> = {};
      for (const s of this.#scores.all(r.id) as Array<{ metric: string; score: number }>)
        scores[s.metric] = s.score;
      return { ...r, scores };
    });
    return {
      total,
      offset: page.after !== undefined ? -1 : page.offset,
      rows: withScores,
      next_after: rows.length === page.limit ? rows[rows.length - 1].id : null,
    };
  }

  /** Request ids indexed for one prompt (experiment + item id), by model id. */
  requestIds(experiment: string, itemId: string): string[] {
    return this.#db
      .prepare(
        "SELECT DISTINCT request_id FROM samples WHERE experiment = ? AND item_id = ? ORDER BY model_id, request_id",
      )
      .pluck()
      .all(experiment, itemId) as string[];
  }
}

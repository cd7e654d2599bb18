import { existsSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { RunStore } from "../runs/store.ts";

/**
 * The viewer's side index: one row per stored completion with the columns the list
 * filters on, averaged judge scores per metric, and an FTS5 table over prompt + completion.
 * It lives beside the store (`viewer-index.sqlite`) so the store itself is only ever read,
 * and is rebuilt when the store's fingerprint changes.
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

/** Something that changes whenever completions, judgments or requests change. */
export function storeFingerprint(store: RunStore): string {
  const c = store.db.prepare("SELECT count(*) AS n, coalesce(max(rowid), 0) AS m FROM completions").get() as {
    n: number;
    m: number;
  };
  // Judgments are upserted in place, so ids alone miss a re-judged sample: fold in score and reply.
  const j = store.db
    .prepare(
      "SELECT count(*) AS n, coalesce(max(id), 0) AS m, total(score) AS s, total(length(raw)) AS r FROM judgments",
    )
    .get() as { n: number; m: number; s: number; r: number };
  const r = store.db.prepare("SELECT count(*) AS n FROM requests").get() as { n: number };
  return `v${INDEX_VERSION}:c${c.n}/${c.m}:j${j.n}/${j.m}/${j.s}/${j.r}:r${r.n}`;
}

/** Plain text of a chat message list (for search and the list's prompt column). */
export function messagesText(messagesJson: string): { all: string; lastUser: string } {
  let messages: unknown;
  try {
    messages = JSON.parse(messagesJson);
  } catch {
    return { all: messagesJson, lastUser: messagesJson };
  }
  if (!Array.isArray(messages)) return { all: messagesJson, lastUser: messagesJson };
  const parts: string[] = [];
  let lastUser = "";
  for (const m of messages as Array<{ role?: unknown; content?: unknown }>) {
    const text = contentText(m?.content);
    parts.push(text);
    if (m?.role === "user") lastUser = text;
  }
  return { all: parts.join("\n"), lastUser: lastUser || parts[parts.length - 1] || "" };
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content
      .map((p) =>
        p && typeof p === "object" && typeof (p as { text?: unknown }).text === "string"
          ? (p as { text: string }).text
          : "",
      )
      .join("");
  return content == null ? "" : JSON.stringify(content);
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
 * Opens the index for a run, building it first when it is missing or stale. Builds go to
 * a temporary file renamed into place, so a killed build never leaves a half index.
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
  // Samples in planning order: request rowid, then sample index.
  const rows = store.db
    .prepare(
      `SELECT r.id AS request_id, r.model_id, r.experiment, r.item_id, r.messages_json, c.sample_index, c.text
       FROM completions c JOIN requests r ON r.id = c.request_id
       ORDER BY r.rowid, c.sample_index`,
    )
    .iterate() as IterableIterator<{
    request_id: string;
    model_id: string;
    experiment: string;
    item_id: string;
    messages_json: string;
    sample_index: number;
    text: string;
  }>;
  let id = 0;
  let lastRequest = "";
  let prompt = { all: "", lastUser: "" };
  db.transaction(() => {
    for (const r of rows) {
      id++;
      if (r.request_id !== lastRequest) {
        prompt = messagesText(r.messages_json);
        lastRequest = r.request_id;
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
    const scores = store.db
      .prepare(
        `SELECT request_id, sample_index, metric, avg(score) AS score FROM judgments
         WHERE score IS NOT NULL GROUP BY request_id, sample_index, metric`,
      )
      .iterate() as IterableIterator<{
      request_id: string;
      sample_index: number;
      metric: string;
      score: number;
    }>;
    for (const s of scores) {
      const sid = lookup.get(s.request_id, s.sample_index) as number | undefined;
      if (sid !== undefined) insertScore.run(sid, s.metric, s.score);
    }
  })();
  return id;
}

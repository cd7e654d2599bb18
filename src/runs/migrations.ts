/**
 * Versioned schema of the run store. Each entry moves the store from version i to i+1;
 * `PRAGMA user_version` records where a store is. Never edit a released migration: add one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE study (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    config_json TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    source_path TEXT NOT NULL,
    source_text TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE models (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    base_url TEXT,
    roles_json TEXT NOT NULL
  );
  CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    item_id TEXT NOT NULL,
    messages_json TEXT NOT NULL,
    params_json TEXT NOT NULL,
    n INTEGER NOT NULL,
    seed INTEGER,
    cache_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX requests_by_model ON requests (model_id, experiment);
  CREATE TABLE calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES requests (id),
    attempt INTEGER NOT NULL,
    sample_indices TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'retry', 'failed', 'aborted')),
    error_kind TEXT,
    http_status INTEGER,
    error TEXT,
    response_id TEXT,
    latency_ms REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    started_at TEXT NOT NULL
  );
  CREATE INDEX calls_by_request ON calls (request_id);
  CREATE TABLE completions (
    request_id TEXT NOT NULL REFERENCES requests (id),
    sample_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    logprobs_json TEXT,
    completion_tokens INTEGER,
    latency_ms REAL,
    cached INTEGER NOT NULL DEFAULT 0,
    call_id INTEGER REFERENCES calls (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (request_id, sample_index)
  );
  CREATE TABLE judgments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    judge_model_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    score REAL,
    method TEXT NOT NULL,
    raw TEXT NOT NULL,
    judge_request_id TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (request_id, sample_index, judge_model_id, metric),
    FOREIGN KEY (request_id, sample_index) REFERENCES completions (request_id, sample_index)
  );
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    spec_json TEXT NOT NULL,
    result_json TEXT,
    error TEXT,
    started_at TEXT,
    finished_at TEXT
  );
  CREATE TABLE artifacts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT,
    meta_json TEXT,
    created_at TEXT NOT NULL
  );
  `,
  // v2: explicit per-sample seeds of a request (interp's sweeps use common random numbers).
  `
  ALTER TABLE requests ADD COLUMN sample_seeds_json TEXT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

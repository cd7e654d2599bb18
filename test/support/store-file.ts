import path from "node:path";
import Database from "better-sqlite3";
import { STORE_FILE } from "../../src/runs/store.ts";

/**
 * A run's SQLite file opened directly, as another program could: for tests that inspect
 * pragmas or damage rows behind the store's back. Everything else goes through RunStore.
 */
export function withStoreFile<T>(
  dir: string,
  fn: (db: Database.Database) => T,
  opts: { readonly?: boolean } = {},
): T {
  const db = new Database(path.join(dir, STORE_FILE), {
    fileMustExist: true,
    readonly: opts.readonly ?? false,
  });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

// A run store that is damaged (random bytes, a zeroed header, cut short, a bad page), another
// program's SQLite file, or a store of a newer schema is bad input (exit 2) for every command
// that opens it — `run --resume`, `status`, `report`, `view` — naming the file and what to do,
// and the run directory is left byte for byte as it was. A store an interrupted start left
// says what the user can do with it.
import { createHash } from "node:crypto";
import {
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStudy } from "../../src/config/load.ts";
import { OPENING_DIR } from "../../src/runs/lock.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "../../src/runs/migrations.ts";
import { RunStore, STORE_FILE } from "../../src/runs/store.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { withStoreFile } from "../support/store-file.ts";
import { startWireServer, type WireServer } from "../support/wire-server.ts";
import { runCli, TEST_KEYS_ENV, tmpDir, writeStudy } from "./support.ts";

let server: WireServer;
let ws: string;
let study: string;
/** A finished run (results.json written): what report and view would read. */
let good: string;
beforeAll(async () => {
  server = await startWireServer({ apiKey: null });
  ws = tmpDir("corrupt-store");
  study = writeStudy(ws, server, { prompts: 3, samples: 1 });
  good = path.join(ws, "good");
  const r = await runStudy(loadStudy(study), { outDir: good, noCache: true, env: TEST_KEYS_ENV });
  expect(r.resultsFile).toBeDefined();
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** A copy of the finished run (its files, not SQLite's sidecars) with `damage` done to its store. */
function damagedCopy(name: string, damage: (file: string, dir: string) => void): string {
  const dir = path.join(ws, name);
  mkdirSync(dir);
  for (const f of readdirSync(good))
    if (!f.endsWith("-wal") && !f.endsWith("-shm")) copyFileSync(path.join(good, f), path.join(dir, f));
  damage(path.join(dir, STORE_FILE), dir);
  return dir;
}

/** Every file in `dir` with its hash: the directory as it is. */
const snapshot = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir).map((f) => [
      f,
      createHash("sha256")
        .update(readFileSync(path.join(dir, f)))
        .digest("hex"),
    ]),
  );

/** Bytes from a seeded generator (xorshift), so the damage is the same in every run. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 255;
  }
  return b;
}

const RESTORE = "restore it from a copy, or start a new run with another --out";

const DAMAGE: Array<{ what: string; damage: (file: string, dir: string) => void; says: RegExp }> = [
  {
    what: "random bytes",
    damage: (f) => writeFileSync(f, noise(statSync(f).size, 1)),
    says: /is damaged or not a run store: not a SQLite database \(no SQLite header\)/,
  },
  {
    what: "a zeroed header",
    damage: (f) => {
      const b = readFileSync(f);
      b.fill(0, 0, 100);
      writeFileSync(f, b);
    },
    says: /is damaged or not a run store: not a SQLite database/,
  },
  {
    what: "truncated",
    damage: (f) => truncateSync(f, Math.floor(statSync(f).size / 2)),
    says: /the run store is damaged \(database disk image is malformed\)/,
  },
  {
    what: "a bad page",
    damage: (f, dir) => {
      // The completions table's root page, overwritten with noise.
      const { page, size } = withStoreFile(
        dir,
        (db) => ({
          page: db
            .prepare("SELECT rootpage FROM sqlite_master WHERE name = 'completions'")
            .pluck()
            .get() as number,
          size: db.pragma("page_size", { simple: true }) as number,
        }),
        { readonly: true },
      );
      for (const ext of ["-wal", "-shm"]) rmSync(`${f}${ext}`, { force: true });
      const b = readFileSync(f);
      noise(size, 2).copy(b, (page - 1) * size);
      writeFileSync(f, b);
    },
    says: /the run store is damaged \(/,
  },
  {
    what: "a SQLite file that is not an emlab store",
    damage: (f) => {
      writeFileSync(f, "");
      const db = new Database(f);
      db.pragma("journal_mode = WAL");
      db.exec(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('mine')",
      );
      db.close();
    },
    says: /is not an emlab run store: a SQLite database without emlab's tables/,
  },
  {
    what: "an emlab store of a newer schema version",
    damage: (_f, dir) => withStoreFile(dir, (db) => db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)),
    says: new RegExp(`store schema v${SCHEMA_VERSION + 1} is newer than this emlab .*upgrade emlab`),
  },
];

/**
 * The four commands that open a run store, one after the other (view is killed should it
 * start serving). Not at once: two processes checking one file at the same moment may leave
 * the empty -wal/-shm files SQLite makes beside a WAL-mode file (each removes only its own).
 */
async function commands(dir: string) {
  const run = await runCli(["run", study, "--out", dir, "--resume", "--no-cache"], TEST_KEYS_ENV);
  const status = await runCli(["status", dir], {});
  const report = await runCli(["report", dir], {});
  const view = await runCli(["view", dir, "--port", "0"], {}, (child) => {
    const timer = setTimeout(() => child.kill("SIGTERM"), 30_000);
    child.on("close", () => clearTimeout(timer));
  });
  return { run, status, report, view };
}

describe("a corrupted or foreign run store", () => {
  for (const { what, damage, says } of DAMAGE)
    it(`${what}: run --resume, status, report and view exit 2 naming the file; nothing changes`, async () => {
      const dir = damagedCopy(what.replaceAll(" ", "-"), damage);
      const before = snapshot(dir);
      for (const [name, r] of Object.entries(await commands(dir))) {
        expect(r.code, `${name}: ${r.stderr}`).toBe(2);
        expect(r.stderr, name).toContain(`error: bad input\n${path.join(dir, STORE_FILE)}: `);
        expect(r.stderr, name).toMatch(says);
        expect(r.stderr, name).toContain(what.startsWith("an emlab store") ? "upgrade emlab" : RESTORE);
      }
      expect(snapshot(dir)).toEqual(before);
    }, 60_000);

  it("the library refuses it too, with the same message, opening it read-only or not", () => {
    const dir = damagedCopy("library", DAMAGE[2].damage);
    const before = snapshot(dir);
    for (const readonly of [true, false])
      expect(() => RunStore.open(dir, { readonly })).toThrow(
        expect.objectContaining({ name: "InputError", message: expect.stringContaining(RESTORE) }),
      );
    expect(snapshot(dir)).toEqual(before);
  });
});

describe("a store an interrupted start left", () => {
  it("empty run.sqlite: status and view say how to finish it (no --readonly); run --resume does", async () => {
    const dir = path.join(ws, "empty");
    mkdirSync(dir);
    writeFileSync(path.join(dir, STORE_FILE), "");
    const [status, view] = await Promise.all([
      runCli(["status", dir], {}),
      runCli(["view", dir, "--port", "0"], {}),
    ]);
    for (const r of [status, view]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `${path.join(dir, STORE_FILE)}: holds no run yet: its run was killed while it was being created`,
      );
      expect(r.stderr).toContain(`\`emlab run STUDY.yaml --out ${dir} --resume\` finishes creating it`);
      expect(r.stderr).not.toMatch(/readonly/);
    }
    expect(readFileSync(path.join(dir, STORE_FILE))).toHaveLength(0);
    // What the message says works.
    const resumed = await runCli(["run", study, "--out", dir, "--resume", "--no-cache"], TEST_KEYS_ENV);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = await runCli(["status", dir, "--json"], {});
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({ study: "wire-study", requestsFailed: 0 });
  }, 60_000);

  it("an older schema: status says which command upgrades it", async () => {
    const dir = path.join(ws, "older");
    mkdirSync(dir);
    const db = new Database(path.join(dir, STORE_FILE));
    db.pragma("journal_mode = WAL");
    db.exec(MIGRATIONS[0]);
    db.pragma("user_version = 1");
    db.close();
    const r = await runCli(["status", dir], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `store schema v1 was written by an older emlab (this one uses v${SCHEMA_VERSION}); \`emlab run STUDY.yaml --out ${dir} --resume\` upgrades it`,
    );
    expect(r.stderr).not.toMatch(/readonly/);
  });

  it("only .run-opening/ (killed before run.sqlite was in place): status says to start it again", async () => {
    const dir = path.join(ws, "opening");
    mkdirSync(path.join(dir, OPENING_DIR), { recursive: true });
    const r = await runCli(["status", dir], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${dir}: holds no run: one was killed while it was being created`);
    expect(r.stderr).toContain(`emlab run STUDY.yaml --out ${dir}\``);
  });
});

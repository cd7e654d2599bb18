import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { InputError } from "../config/load.ts";
import { RunStore, STORE_FILE } from "./store.ts";

export const LOCK_FILE = "run.lock";
/** Where a new run's store is written before it becomes `run.sqlite` (see createRunStore). */
export const OPENING_DIR = ".run-opening";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * `--out` must name a directory, new or not: a path that is a file, or lies under one, is bad
 * input naming it (not an EEXIST or ENOTDIR from the first mkdir). Nothing is written.
 */
export function checkRunDirPath(dir: string): void {
  const abs = path.resolve(dir);
  for (let p = abs; ; p = path.dirname(p)) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
    }
    if (isDir === false)
      throw new InputError([
        {
          file: dir,
          message:
            p === abs
              ? "--out names a file, not a directory; choose another --out (a new directory, or one that holds a run)"
              : `--out cannot be a directory: ${p} is a file; choose another --out`,
        },
      ]);
    if (isDir || path.dirname(p) === p) return;
  }
}

/**
 * What status and the viewer read: a directory that holds run.sqlite. One that does not is
 * bad input saying why (a run killed while it was being created leaves no run).
 */
export function checkRunDirForReading(dir: string): void {
  if (existsSync(path.join(dir, STORE_FILE))) return;
  throw new InputError([
    {
      file: dir,
      message: !existsSync(dir)
        ? "no such run directory"
        : killedWhileOpening(dir)
          ? `holds no run: one was killed while it was being created, before anything was stored; start it again with \`emlab run STUDY.yaml --out ${dir}\``
          : `is not a run directory (no ${STORE_FILE})`,
    },
  ]);
}

/**
 * One emlab process per run directory: two resumes of the same run would take the same
 * pending work and pay for it twice. The lock holds the owner's pid; a lock left by a
 * killed process (its pid gone) is taken over. Returns the release function.
 */
export function lockRunDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
      if (Number.isInteger(pid) && alive(pid))
        throw new InputError([
          { file: dir, message: `another emlab process (pid ${pid}) is running this run` },
        ]);
      rmSync(file, { force: true }); // stale: its owner is gone
    }
  }
  throw new InputError([{ file: dir, message: "cannot take the run lock" }]);
}

/**
 * Creates a run's store atomically: it is made in OPENING_DIR, `write` records what a resume
 * checks (study row, models, input-files.json), and only then is it renamed to `run.sqlite`.
 * A process killed before the rename leaves no run (OPENING_DIR is removed by the next new
 * run); one killed after it leaves a run that resumes with its guards on. Call with the run
 * lock held, and only when the directory holds no run.
 */
export function createRunStore(dir: string, write: (store: RunStore) => void, env: NodeJS.ProcessEnv): void {
  const tmp = path.join(dir, OPENING_DIR);
  rmSync(tmp, { recursive: true, force: true }); // left by a run killed while it was opening
  const store = RunStore.open(tmp, { create: true });
  try {
    crashPoint("open:store", env);
    write(store);
  } finally {
    store.close();
  }
  crashPoint("open:written", env);
  const file = path.join(tmp, STORE_FILE);
  // Sidecar files without their store belong to no run; left there they would be read as ours.
  for (const ext of ["-wal", "-shm"]) rmSync(path.join(dir, `${STORE_FILE}${ext}`), { force: true });
  // Closing the last connection checkpoints the WAL into the file; should one be left, it
  // travels with the file (SQLite pairs them by name), and goes first: the file is the commit.
  if (existsSync(`${file}-wal`)) renameSync(`${file}-wal`, path.join(dir, `${STORE_FILE}-wal`));
  rmSync(`${file}-shm`, { force: true });
  renameSync(file, path.join(dir, STORE_FILE));
  rmSync(tmp, { recursive: true, force: true });
  crashPoint("open:done", env);
}

/** Whether `dir` holds what a run killed while it was being created leaves (and no run). */
export const killedWhileOpening = (dir: string) =>
  existsSync(path.join(dir, OPENING_DIR)) && !existsSync(path.join(dir, STORE_FILE));

/**
 * Fault injection for tests: `EMLAB_CRASH_AT=<point>` makes the process SIGKILL itself there
 * (points: open:store, open:written, open:done), the way a kill -9 at the worst moment would.
 */
export function crashPoint(point: string, env: NodeJS.ProcessEnv): void {
  if (env.EMLAB_CRASH_AT === point) process.kill(process.pid, "SIGKILL");
}

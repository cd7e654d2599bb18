import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import { InputError } from "../config/load.ts";

export const LOCK_FILE = "run.lock";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

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

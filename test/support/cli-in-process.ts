import { Command } from "commander";
import { vi } from "vitest";

/**
 * Runs one emlab command in this process (the command registered by `register` on a fresh
 * program): what it wrote to stdout and stderr, and the exit code it set.
 */
export async function runCommandInProcess(
  register: (program: Command) => void,
  args: string[],
): Promise<{ out: string; err: string; code: number | undefined }> {
  const program = new Command().exitOverride();
  register(program);
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => {
    out += String(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
    err += String(s);
    return true;
  });
  process.exitCode = undefined;
  try {
    await program.parseAsync(args, { from: "user" });
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = process.exitCode as number | undefined;
  process.exitCode = undefined;
  return { out, err, code };
}

import { Command } from "commander";
import { vi } from "vitest";

/** What `f` writes to stdout and stderr while it runs (neither reaches the terminal). */
export async function captureOutput<T>(f: () => Promise<T>): Promise<{ value: T; out: string; err: string }> {
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
  try {
    return { value: await f(), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

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
  process.exitCode = undefined;
  const { out, err } = await captureOutput(() => program.parseAsync(args, { from: "user" }));
  const code = process.exitCode as number | undefined;
  process.exitCode = undefined;
  return { out, err, code };
}

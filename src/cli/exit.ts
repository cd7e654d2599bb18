import { InputError } from "../config/load.ts";

/** Exit codes of every command: 0 ok, 1 the run failed, 2 bad input, 130 interrupted (Ctrl-C). */
export const EXIT = { ok: 0, failed: 1, badInput: 2, interrupted: 130 } as const;

/** Runs a command body; bad input and failures become a message on stderr and an exit code. */
export function command<A extends unknown[]>(
  body: (...args: A) => Promise<number>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = await body(...args);
    } catch (e) {
      if (e instanceof InputError) {
        process.stderr.write(`error: bad input\n${e.message}\n`);
        process.exitCode = EXIT.badInput;
      } else {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        if (process.env.EMLAB_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
        process.exitCode = EXIT.failed;
      }
    }
  };
}

/** A non-negative integer option value, or an error naming the option. */
export function nonNegativeInt(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${option} must be a non-negative integer, got '${value}'`);
  return n;
}

/** A number from 0 to 1 (a share), or an error naming the option. */
export function share(option: string, value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new Error(`${option} must be a number from 0 to 1, got '${value}'`);
  return n;
}

/** Bad input of a command-line option (exit 2), named by the option. */
export const badOption = (flag: string, message: string) => new InputError([{ file: flag, message }]);

/** An integer option value of at least `min`, or bad input naming the option. */
export function intOption(flag: string, value: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw badOption(flag, `must be an integer >= ${min}, got '${value}'`);
  return n;
}

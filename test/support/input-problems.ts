import { InputError, type InputProblem } from "../../src/config/load.ts";

/** The problems of the InputError `f` throws (fails if it throws none, or throws another error). */
export function problemsOf(f: () => unknown): InputProblem[] {
  try {
    f();
  } catch (e) {
    if (e instanceof InputError) return e.problems;
    throw e;
  }
  throw new Error("expected an InputError");
}

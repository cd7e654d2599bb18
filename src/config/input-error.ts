/** Bad input, located: what every reader of a study or of a file it names throws. */

/** One problem in an input file, located as precisely as the file allows. */
export interface InputProblem {
  file: string;
  line?: number;
  column?: number;
  field?: string;
  message: string;
}

/** Bad input: the CLI exits 2 and prints every problem as `file:line:col: field: message`. */
export class InputError extends Error {
  readonly problems: InputProblem[];
  constructor(problems: InputProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "InputError";
    this.problems = problems;
  }
}

export function formatProblem(p: InputProblem): string {
  const where = [p.file, p.line, p.column].filter((x) => x !== undefined).join(":");
  return `${where}: ${p.field ? `${p.field}: ` : ""}${p.message}`;
}

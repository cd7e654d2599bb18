import path from "node:path";
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { z } from "zod";
import { InputError, type InputProblem } from "./input-error.ts";
import { type Study, studySchema } from "./schema.ts";
import { findCommentSecrets, findModelSecrets } from "./secrets.ts";
import { readTextFile } from "./text-file.ts";

export { formatProblem, InputError, type InputProblem } from "./input-error.ts";

/** `models[0].limits.rpm` from a zod path. */
export function fieldName(segments: readonly PropertyKey[]): string {
  let out = "";
  for (const s of segments) out += typeof s === "number" ? `[${s}]` : out ? `.${String(s)}` : String(s);
  return out;
}

// Keys that would put a secret into a file that gets stored, cached and logged.
const SECRET_KEYS = new Set([
  "api_key",
  "apikey",
  "api-key",
  "x-api-key",
  "authorization",
  "password",
  "secret",
  "access_token",
]);

export interface LoadedStudy {
  study: Study;
  /** Absolute path of the study file. */
  file: string;
  /** The raw YAML text, stored with the run. */
  text: string;
}

export function loadStudy(file: string): LoadedStudy {
  const abs = path.resolve(file);
  const text = readTextFile(abs, { shownAs: file, what: "study file" });
  return { study: parseStudy(text, file), file: abs, text };
}

/** Parses and validates a study; `file` is only used to name the source in errors. */
export function parseStudy(text: string, file: string): Study {
  const comments = findCommentSecrets(text);
  if (comments.length > 0)
    throw new InputError(
      comments.map((at) => ({
        file,
        ...at,
        message:
          "a comment holds what looks like a key: the study's text is stored with the run, comments included; remove it (keys go in environment variables, named by `api_key_env` or a header's env reference)",
      })),
    );
  return parseYamlWithSchema(text, file, studySchema(), checkNoSecrets);
}

/**
 * YAML → zod with every error located at file:line:column. Shared by every YAML input
 * (studies, question sets) so they all report problems the same way.
 */
export function parseYamlWithSchema<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  extraCheck?: (root: Node | null, locate: Locator) => InputProblem[],
): z.infer<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new InputError(
      doc.errors.map((e) => ({
        file,
        line: e.linePos?.[0]?.line,
        column: e.linePos?.[0]?.col,
        message: `invalid YAML: ${e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")}`,
      })),
    );
  }
  const locate = locatorOf(doc, lineCounter);
  const extra = extraCheck?.(doc.contents as Node | null, locate).map((p) => ({ ...p, file })) ?? [];
  const data = toJsOrThrow(doc, lineCounter, file);
  const result = schema.safeParse(data ?? {});
  if (result.success && extra.length === 0) return result.data;
  const problems = result.success
    ? []
    : result.error.issues.flatMap((issue) => issueProblems(issue, file, locate));
  const named = new Set(extra.map((p) => p.field));
  throw new InputError([...extra, ...problems.filter((p) => !named.has(p.field))]);
}

// Aliases one document may expand to, in all: past this it is an alias bomb ("billion laughs").
const MAX_ALIAS_COUNT = 1000;

/** The document's value; an alias bomb or a bad alias is an InputError at the first alias. */
function toJsOrThrow(doc: ReturnType<typeof parseDocument>, lineCounter: LineCounter, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // A bomb is located at its first alias, an alias to nothing at itself.
    const excessive = /excessive alias count/i.test((e as Error).message);
    let first: number | undefined;
    visit(doc, {
      Alias: (_key, node) => {
        if (!excessive && node.resolve(doc) !== undefined) return;
        first = node.range?.[0];
        return visit.BREAK;
      },
    });
    const pos = first === undefined ? undefined : lineCounter.linePos(first);
    throw new InputError([
      {
        file,
        line: pos?.line,
        column: pos?.col,
        message: excessive
          ? `invalid YAML: more than ${MAX_ALIAS_COUNT} alias expansions (an alias bomb?), from the first alias here on`
          : `invalid YAML: ${(e as Error).message}`,
      },
    ]);
  }
}

export type Locator = (segments: readonly PropertyKey[], key?: string) => { line?: number; column?: number };

function locatorOf(doc: ReturnType<typeof parseDocument>, lineCounter: LineCounter): Locator {
  return (segments, key) => {
    const offset = offsetOf(doc.contents as Node | null, segments, key, doc);
    if (offset === undefined) return {};
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
}

/**
 * Where a field of an already validated YAML text is, for problems found after parsing. The
 * text is parsed again only when a problem is first located, not on every run.
 */
export function yamlLocator(text: string): Locator {
  let locate: Locator | undefined;
  return (segments, key) => {
    if (!locate) {
      const lineCounter = new LineCounter();
      locate = locatorOf(parseDocument(text, { lineCounter, uniqueKeys: true }), lineCounter);
    }
    return locate(segments, key);
  };
}

function issueProblems(issue: z.core.$ZodIssue, file: string, locate: Locator): InputProblem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      file,
      ...locate(issue.path, key),
      field: fieldName([...issue.path, key]),
      message: `unknown field '${key}'`,
    }));
  }
  return [{ file, ...locate(issue.path), field: fieldName(issue.path) || "(root)", message: issue.message }];
}

/** Character offset of the node at `segments` (or of `key` inside that map), following aliases. */
function offsetOf(
  root: Node | null,
  segments: readonly PropertyKey[],
  key: string | undefined,
  doc: ReturnType<typeof parseDocument>,
): number | undefined {
  let node: unknown = root;
  let lastOffset = (root as Node | null)?.range?.[0];
  const all = key === undefined ? segments : [...segments, key];
  for (let i = 0; i < all.length; i++) {
    const seg = all[i];
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (!pair) return lastOffset;
      const keyNode = pair.key as Node | undefined;
      // The last segment points at its key (where the field is named); earlier ones descend.
      if (i === all.length - 1 && keyNode?.range) return keyNode.range[0];
      node = pair.value;
      lastOffset = (pair.value as Node | null)?.range?.[0] ?? keyNode?.range?.[0] ?? lastOffset;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg];
      lastOffset = (node as Node | null)?.range?.[0] ?? lastOffset;
    } else {
      return lastOffset;
    }
  }
  return (node as Node | null)?.range?.[0] ?? lastOffset;
}

/**
 * Refuses key-looking fields anywhere in the study, and keys in a model's headers, options and
 * base URL (src/config/secrets.ts: a header takes a secret as `${env:NAME}`), without echoing
 * their values.
 */
function checkNoSecrets(root: Node | null, locate: Locator): InputProblem[] {
  const problems: InputProblem[] = [];
  // A header named Authorization or X-API-Key is allowed with an env reference: the header rule judges it.
  const isHeaders = (trail: PropertyKey[]) =>
    trail.length === 3 && trail[0] === "models" && typeof trail[1] === "number" && trail[2] === "headers";
  const walk = (node: unknown, trail: PropertyKey[]) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        if (typeof k === "string" && SECRET_KEYS.has(k.toLowerCase()) && !isHeaders(trail)) {
          problems.push({
            file: "",
            ...locate(trail, k),
            field: fieldName([...trail, k]),
            message:
              "secrets do not belong in a study file: put the key in an environment variable and name it in `api_key_env`",
          });
        }
        walk(pair.value, [...trail, String(k)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        walk(item, [...trail, i]);
      });
    }
  };
  walk(root, []);
  const named = new Set(problems.map((p) => p.field));
  for (const f of findModelSecrets(root)) {
    const field = fieldName(f.path);
    if (!named.has(field)) problems.push({ file: "", ...locate(f.path), field, message: f.message });
  }
  return problems;
}

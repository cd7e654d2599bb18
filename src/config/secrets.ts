/**
 * Secrets that would be stored with a run (the study row keeps the validated study and its
 * YAML text; the models rows and the cache keys keep base URLs and options) are refused when
 * the study is loaded, before anything is written. `checkNoSecrets` (load.ts) applies these
 * rules to every model entry:
 *
 * - `headers`: a value may name environment variables as `${env:NAME}`, replaced by the
 *   provider when it is built (never in the study, the store or a log). A header whose name
 *   looks like a credential (`Authorization`, `X-Auth-Token`, `X-API-Key`, `Cookie`, ...) must
 *   take its secret from one: apart from its references it may hold only an auth-scheme word
 *   or a `name=` prefix (`"Bearer ${env:MY_TOKEN}"`). No header's literal text may look like
 *   a key (below).
 * - `options`: an option named like a credential (`auth_header`, `password`, `api_token`, a bare
 *   `token` or `key`; not `maxTokensField` or `eos_token`) may not hold a string; no string
 *   anywhere in the options may look like a key. Options take no `${env:…}` references.
 * - `base_url`: no `user:password@`, no credential-named query parameter (`?key=`, `?sig=`),
 *   no path segment or query value that looks like a key.
 *
 * "Looks like a key": a known key format (`sk-…`, `sk-ant-…`, `ghp_…`, `AKIA…`, `AIza…`,
 * `hf_…`, `xox?-…`, a JWT, a PEM private key), an auth scheme with a literal credential
 * (`Bearer abc…`, `Basic …`, `Token …`), a UUID, 32+ hex digits, or a random-looking run of
 * 20+ letters and digits (mixed case, or 32+ characters). OpenAI organization and project ids
 * (`org-…`, `proj_…`) are names, not keys.
 *
 * Messages never echo the value.
 */
import { isAlias, isMap, isScalar, isSeq, Lexer, type Node } from "yaml";

/** `${env:NAME}` inside a header value: NAME is an environment variable name. */
export const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The variables a header value references, in order (repeats kept). */
export function envRefNames(value: string): string[] {
  return [...value.matchAll(ENV_REF)].map((m) => m[1]);
}

/** Every variable the headers of a model entry reference. */
export function headerEnvNames(headers: Record<string, string> | undefined): string[] {
  return Object.values(headers ?? {}).flatMap(envRefNames);
}

/**
 * A header value with its references replaced by the variables' values (trimmed); `missing`
 * lists the referenced variables that are unset or empty (then `value` is not usable).
 */
export function resolveEnvRefs(
  value: string,
  env: NodeJS.ProcessEnv,
): { value: string; secrets: string[]; missing: string[] } {
  const secrets: string[] = [];
  const missing: string[] = [];
  const out = value.replace(ENV_REF, (_, name: string) => {
    const v = env[name]?.trim();
    if (!v) {
      missing.push(name);
      return "";
    }
    secrets.push(v);
    return v;
  });
  return { value: out, secrets, missing };
}

// Words of a name that make it a credential's name. Matched as whole words (split at
// non-letters and camelCase), so `maxTokensField` (tokens) and `keyword` are not.
const CREDENTIAL_WORDS = new Set([
  "auth",
  "authorization",
  "authentication",
  "token",
  "key",
  "apikey",
  "secret",
  "password",
  "passwd",
  "pwd",
  "passphrase",
  "cookie",
  "session",
  "credential",
  "credentials",
  "bearer",
  "signature",
  "sig",
  "jwt",
]);
// Unambiguous inside a run-together name (`xapikey`, `authtoken`, `clientsecret`).
const CREDENTIAL_PARTS = [
  "apikey",
  "authtoken",
  "accesstoken",
  "secret",
  "password",
  "passwd",
  "cookie",
  "credential",
  "authorization",
];

function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter(Boolean);
}

const hasCredentialPart = (name: string) => {
  const flat = name.toLowerCase().replace(/[^a-z]/g, "");
  return CREDENTIAL_PARTS.some((p) => flat.includes(p));
};

/** Whether a header or query parameter name looks like it holds a credential. */
export function isCredentialName(name: string): boolean {
  return nameWords(name).some((w) => CREDENTIAL_WORDS.has(w)) || hasCredentialPart(name);
}

// Options are a model's settings, where `token` and `key` are mostly about tokens
// (`maxTokensField`, `eos_token`) and lookups: an option is a credential's name only with a
// word that always is one, as a bare `token` / `key`, or as `access_token`, `api_key`, ... .
const OPTION_CREDENTIAL_WORDS = new Set(
  [...CREDENTIAL_WORDS].filter((w) => !["token", "key", "session", "sig", "signature"].includes(w)),
);
const KEY_QUALIFIERS = new Set([
  "access",
  "auth",
  "api",
  "refresh",
  "bearer",
  "session",
  "id",
  "secret",
  "private",
  "client",
  "user",
  "app",
  "service",
  "account",
  "signing",
  "master",
  "admin",
]);

/** Whether a provider option's name looks like it holds a credential. */
export function isCredentialOptionName(name: string): boolean {
  const words = nameWords(name);
  if (words.some((w) => OPTION_CREDENTIAL_WORDS.has(w)) || hasCredentialPart(name)) return true;
  if (words.length === 1 && ["token", "key", "sig", "signature"].includes(words[0])) return true;
  return words.some((w, i) => (w === "token" || w === "key") && i > 0 && KEY_QUALIFIERS.has(words[i - 1]));
}

const KNOWN_KEY_FORMATS: readonly RegExp[] = [
  /(?:^|[^A-Za-z0-9])(?:sk|pk|rk)[-_][A-Za-z0-9_-]{12,}/, // OpenAI, Anthropic (sk-ant-), Stripe, ...
  /\bgh[pousr]_[A-Za-z0-9]{20,}/,
  /\bgithub_pat_\w{20,}/,
  /\bglpat-[\w-]{20,}/,
  /\bxox[abposr]-[\w-]{10,}/,
  /\bAKIA[0-9A-Z]{16}\b/,
  /\bAIza[\w-]{30,}/,
  /\bhf_[A-Za-z0-9]{30,}/,
  /\beyJ[\w-]{10,}\.[\w-]{10,}/, // JWT
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
];
const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/i;
// The whole value an auth scheme and one credential ("Bearer abc"; not "token limit reached").
const SCHEME_WITH_CREDENTIAL = /^\s*(?:bearer|basic|token|digest|apikey|api-key)\s+\S+\s*$/i;
// Names, not keys: OpenAI organization and project ids.
const PUBLIC_IDS = /^(?:org-[A-Za-z0-9]+|proj_[A-Za-z0-9]+)$/;

function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) h -= (n / s.length) * Math.log2(n / s.length);
  return h;
}

/** Whether a literal string looks like a key or carries one (see the file comment). */
export function looksLikeKey(text: string): boolean {
  if (KNOWN_KEY_FORMATS.some((re) => re.test(text)) || UUID.test(text) || SCHEME_WITH_CREDENTIAL.test(text))
    return true;
  for (const word of text.split(/\s+/)) {
    if (PUBLIC_IDS.test(word)) continue;
    if (/[0-9a-f]{32,}/i.test(word) && /[0-9]/.test(word) && /[a-f]/i.test(word)) return true;
    // Identifiers (`Llama-3.1-8B-Instruct`, `claude-3-5-sonnet-20241022`) are short segments
    // between separators; a key is one long random run.
    for (const seg of word.split(/[^A-Za-z0-9+=]+/)) {
      if (seg.length < 20 || !/[0-9]/.test(seg) || !/[A-Za-z]/.test(seg)) continue;
      const mixedCase = /[a-z]/.test(seg) && /[A-Z]/.test(seg);
      if ((mixedCase || seg.length >= 32) && entropy(seg) >= 3) return true;
    }
  }
  return false;
}

const REF = `\${env:NAME}`;
const USE_ENV = `put the value in an environment variable and reference it as \`${REF}\``;
const NOT_HERE = `secrets do not belong in a study file (it is stored with the run); name the key's variable in \`api_key_env\`, or send it in a header as \`${REF}\``;

// What a credential header may hold besides its references: an auth-scheme word, `name=`
// prefixes and separators ("Bearer ${env:T}", "Basic ${env:U}:${env:P}", "session=${env:S}").
const CREDENTIAL_HEADER_REST =
  /^\s*(?:(?:bearer|basic|token|digest|apikey|api-key|key|sso-key)\s*)?(?:[A-Za-z_][\w-]*=|[:;,\s])*$/i;

/** Why a header value is refused, or undefined when it may be stored. */
export function headerProblem(name: string, value: string): string | undefined {
  const bad = value.replace(ENV_REF, "").match(/\$\{[^}]*\}?/);
  if (bad)
    return `malformed environment reference in a header value: write \`${REF}\` (NAME a variable name)`;
  const literal = value.replace(ENV_REF, " ");
  const refs = envRefNames(value).length;
  if (isCredentialName(name)) {
    if (refs === 0)
      return `header '${name}' carries a credential: a literal value would be stored with the run; ${USE_ENV} (e.g. "Bearer \${env:MY_TOKEN}")`;
    const rest = literal.trim();
    if (!CREDENTIAL_HEADER_REST.test(rest))
      return `header '${name}' carries a credential: besides its \`\${env:…}\` references it may hold only an auth-scheme word such as Bearer; ${USE_ENV}`;
    return undefined;
  }
  if (looksLikeKey(literal))
    return `header '${name}' has a value that looks like a key: it would be stored with the run; ${USE_ENV}`;
  return undefined;
}

/** Why a string option (`name` is its own key, or the key above a list) is refused. */
export function optionProblem(name: string, value: string): string | undefined {
  if (isCredentialOptionName(name)) return `option '${name}' looks like a credential: ${NOT_HERE}`;
  if (looksLikeKey(value)) return `this option's value looks like a key: ${NOT_HERE}`;
  return undefined;
}

/** Why a base URL is refused (credentials in it), or undefined. Unparsable URLs are left to the schema. */
export function baseUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  const fix = `a base URL is stored with the run and in the cache keys; name the key's variable in \`api_key_env\`, or send it in a header as \`${REF}\``;
  if (url.username || url.password) return `credentials in the URL (user:password@host) are refused: ${fix}`;
  for (const [k, v] of url.searchParams) {
    if (isCredentialName(k)) return `query parameter '${k}' looks like a credential: ${fix}`;
    if (looksLikeKey(v)) return `query parameter '${k}' has a value that looks like a key: ${fix}`;
  }
  const segments = url.pathname.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  if (segments.some(looksLikeKey) || looksLikeKey(url.hash))
    return `the URL's path looks like it carries a key: ${fix}`;
  return undefined;
}

/** A refused value: where (the field's path, e.g. models, 0, headers, X-Auth-Token) and why. */
export interface SecretFinding {
  path: Array<string | number>;
  message: string;
}

// Aliases followed while checking, at most: an alias bomb is reported by the YAML loader.
const MAX_ALIASES = 1000;

/**
 * The refused headers, options and base URLs of a study's model entries (YAML nodes, so
 * aliases are followed to the anchors they name).
 */
export function findModelSecrets(root: Node | null): SecretFinding[] {
  const anchors = collectAnchors(root);
  let budget = MAX_ALIASES;
  const deref = (node: unknown): unknown => {
    if (!isAlias(node)) return node;
    if (budget-- <= 0) return undefined;
    const at = node.range?.[0] ?? Number.POSITIVE_INFINITY;
    // The anchor an alias names is the last one of that name before it.
    let target: Node | undefined;
    for (const d of anchors.get(node.source) ?? []) if (d.offset < at) target = d.node;
    return deref(target);
  };
  const entries = (node: unknown): Array<[string, unknown]> => {
    const m = deref(node);
    if (!isMap(m)) return [];
    return m.items.flatMap((p) => {
      const k = isScalar(p.key) ? p.key.value : p.key;
      return typeof k === "string" ? [[k, p.value] as [string, unknown]] : [];
    });
  };
  const str = (node: unknown): string | undefined => {
    const s = deref(node);
    return isScalar(s) && typeof s.value === "string" ? s.value : undefined;
  };

  const found: SecretFinding[] = [];
  const add = (path: Array<string | number>, message: string | undefined) => {
    if (message) found.push({ path, message });
  };
  // An option's string is judged by the name of the option that holds it (a list's items by
  // the list's name).
  const walkOption = (node: unknown, path: Array<string | number>, name: string) => {
    const n = deref(node);
    if (isMap(n)) for (const [k, v] of entries(n)) walkOption(v, [...path, k], k);
    else if (isSeq(n))
      n.items.forEach((x, j) => {
        walkOption(x, [...path, j], name);
      });
    else {
      const s = str(n);
      if (s !== undefined) add(path, optionProblem(name, s));
    }
  };
  const models = deref(entries(root).find(([k]) => k === "models")?.[1]);
  if (!isSeq(models)) return found;
  models.items.forEach((item, i) => {
    for (const [field, value] of entries(item)) {
      if (field === "headers") {
        for (const [name, v] of entries(value)) {
          const s = str(v);
          if (s !== undefined) add(["models", i, "headers", name], headerProblem(name, s));
        }
      } else if (field === "options") {
        for (const [k, v] of entries(value)) walkOption(v, ["models", i, "options", k], k);
      } else if (field === "base_url") {
        const s = str(value);
        if (s !== undefined) add(["models", i, "base_url"], baseUrlProblem(s));
      }
    }
  });
  return found;
}

function collectAnchors(root: Node | null): Map<string, Array<{ offset: number; node: Node }>> {
  const anchors = new Map<string, Array<{ offset: number; node: Node }>>();
  const visit = (node: unknown) => {
    if (!node || isAlias(node)) return;
    const n = node as Node & { anchor?: string };
    if (n.anchor) {
      const list = anchors.get(n.anchor) ?? [];
      list.push({ offset: n.range?.[0] ?? 0, node: n });
      anchors.set(n.anchor, list);
    }
    if (isMap(node)) {
      for (const p of node.items) {
        visit(p.key);
        visit(p.value);
      }
    } else if (isSeq(node)) {
      for (const x of node.items) visit(x);
    }
  };
  visit(root);
  return anchors;
}

/**
 * Comments of a study's YAML text that hold a key in a known format (`# api_key: sk-…` left
 * commented out): the study's text is stored with the run, comments included. Only the known
 * formats count here (not the random-run or hex rules): a comment may quote hashes and ids.
 */
export function findCommentSecrets(text: string): Array<{ line: number; column: number }> {
  const out: Array<{ line: number; column: number }> = [];
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    if (token.startsWith("#") && KNOWN_KEY_FORMATS.some((re) => re.test(token))) {
      const before = text.slice(0, offset);
      const line = before.split("\n").length;
      out.push({ line, column: offset - before.lastIndexOf("\n") });
    }
    // The lexer also yields one-character control tokens (document start, scalar markers)
    // that are not in the text.
    if (!(token.length === 1 && token < " " && token !== "\n" && token !== "\t" && token !== "\r"))
      offset += token.length;
  }
  return out;
}

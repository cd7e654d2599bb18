/**
 * Keys in headers, options and base URLs are refused when a study is loaded (file:line:field,
 * the value never echoed, nothing written); a header takes its secret as `${env:NAME}`, which
 * only the provider resolves.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InputError, loadStudy, parseStudy } from "../../src/config/load.ts";
import {
  headerProblem,
  isCredentialName,
  isCredentialOptionName,
  looksLikeKey,
} from "../../src/config/secrets.ts";
import { OpenAIModelApi } from "../../src/models/openai.ts";
import { runStudy } from "../../src/study/run-study.ts";
import { runCli, tmpDir } from "../runs/support.ts";

// Realistic lengths: an OpenAI project key and a 40-character random token.
const KEY = "sk-proj-Q7vN2kRx9LmT4wYp8ZcB3hJd6FsG1aE5uK0oWiXqVnMbRtYe2L";
const TOKEN = "a8Fk2LmQ9zXw4RtY7pNb3VcJ6hGd1SeK5uWo0iTq";

const model = (extra: string) => `name: s
models:
  - id: a
    provider: openai
    model: gpt-4o-mini
${extra}battery:
  generate:
    prompts: {inline: ["hello"]}
    samples: 1
`;

/** Loads and runs a study; expects an InputError and no run directory; returns its problems. */
async function refused(text: string, env: NodeJS.ProcessEnv = {}) {
  const dir = tmpDir("secrets-cfg");
  const file = path.join(dir, "study.yaml");
  writeFileSync(file, text);
  const outDir = path.join(dir, "out");
  let error: unknown;
  try {
    await runStudy(loadStudy(file), { outDir, cacheDir: path.join(dir, "cache"), env });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InputError);
  expect(existsSync(outDir)).toBe(false);
  expect(existsSync(path.join(dir, "cache"))).toBe(false);
  const err = error as InputError;
  for (const secret of [KEY, TOKEN, KEY.slice(8)]) expect(err.message).not.toContain(secret);
  for (const p of err.problems) {
    expect(p.file).toBe(file);
    expect(p.line).toBeGreaterThan(0);
    expect(p.field).toBeTruthy();
  }
  return err.problems;
}

/** `${env:NAME}`, written so that no linter takes it for a template placeholder. */
const ref = (name: string) => `\${env:${name}}`;

const lineOf = (text: string, needle: string) => text.split("\n").findIndex((l) => l.includes(needle)) + 1;

describe("keys in a study's model entries are refused at load", () => {
  const cases: Array<[string, string, string, string, RegExp]> = [
    // [what, yaml lines, the line's marker, field, message]
    [
      "a literal X-Auth-Token header",
      `    headers: {X-Auth-Token: ${KEY}}\n`,
      "X-Auth-Token",
      "models[0].headers.X-Auth-Token",
      /carries a credential.*\$\{env:NAME\}/,
    ],
    [
      "a literal Authorization: Bearer header",
      `    headers:\n      Authorization: "Bearer ${TOKEN}"\n`,
      "Authorization",
      "models[0].headers.Authorization",
      /carries a credential/,
    ],
    [
      "a literal beside an env reference in a credential header",
      `    headers:\n      X-Api-Key: "${TOKEN.slice(0, 12)}\${env:REST}"\n`,
      "X-Api-Key",
      "models[0].headers.X-Api-Key",
      /only an auth-scheme word/,
    ],
    [
      "a key-looking value in a header of any name",
      `    headers:\n      X-Trace: ${TOKEN}\n`,
      "X-Trace",
      "models[0].headers.X-Trace",
      /looks like a key/,
    ],
    [
      "an sk- key in a header of any name",
      `    headers:\n      X-Client: "client ${KEY}"\n`,
      "X-Client",
      "models[0].headers.X-Client",
      /looks like a key/,
    ],
    [
      "a malformed env reference",
      `    headers:\n      X-Auth-Token: "\${ENV:MY_TOKEN}"\n`,
      "X-Auth-Token",
      "models[0].headers.X-Auth-Token",
      /malformed environment reference/,
    ],
    [
      "a key reached through a YAML alias",
      `    headers:\n      X-Trace: *tok\n`,
      "X-Trace",
      "models[0].headers.X-Trace",
      /looks like a key/,
    ],
    [
      "user:password@ in base_url",
      `    base_url: http://user:${KEY}@127.0.0.1:8000/v1\n`,
      "base_url",
      "models[0].base_url",
      /credentials in the URL/,
    ],
    [
      "a key in base_url's query",
      `    base_url: "https://example.org/v1?key=${TOKEN}"\n`,
      "base_url",
      "models[0].base_url",
      /query parameter 'key'/,
    ],
    [
      "a key in base_url's path",
      `    base_url: "https://example.org/${TOKEN}/v1"\n`,
      "base_url",
      "models[0].base_url",
      /path looks like it carries a key/,
    ],
    [
      "a credential-named option",
      `    options:\n      auth_token: ${TOKEN}\n`,
      "auth_token",
      "models[0].options.auth_token",
      /option 'auth_token' looks like a credential/,
    ],
    [
      "a key-looking option value",
      `    options:\n      organization: ${KEY}\n`,
      "organization",
      "models[0].options.organization",
      /value looks like a key/,
    ],
    [
      "a key deep in the options",
      `    options:\n      extra:\n        list:\n          - plain\n          - ${TOKEN}\n`,
      `- ${TOKEN}`,
      "models[0].options.extra.list[1]",
      /value looks like a key/,
    ],
  ];
  for (const [what, yaml, marker, field, message] of cases) {
    it(`refuses ${what}`, async () => {
      // The alias case anchors the token in the study's description.
      const text = model(yaml).replace("name: s\n", `name: s\ndescription: &tok "${TOKEN}"\n`);
      const p = await refused(text);
      expect(p).toHaveLength(1);
      expect(p[0]).toMatchObject({ field, line: lineOf(text, marker) });
      expect(p[0].message).toMatch(message);
    });
  }

  it("reports the old secret-named fields once, and every bad model entry", async () => {
    const text = `${model(`    options: {api_key: ${KEY}}\n`)}`.replace(
      "battery:",
      `  - id: b\n    provider: openai\n    model: m\n    headers: {Cookie: "session=${TOKEN}"}\nbattery:`,
    );
    const p = await refused(text);
    expect(p.map((x) => x.field).sort()).toEqual(["models[0].options.api_key", "models[1].headers.Cookie"]);
  });

  it("refuses a header referencing an unset variable when the providers are built, writing nothing", async () => {
    const text = model(
      `    base_url: http://127.0.0.1:9/v1\n    headers:\n      X-Auth-Token: "\${env:EMLAB_TEST_UNSET_TOKEN}"\n`,
    );
    const p = await refused(text, { OPENAI_API_KEY: KEY });
    expect(p).toHaveLength(1);
    expect(p[0].field).toBe("models[0].headers.X-Auth-Token");
    expect(p[0].message).toMatch(/EMLAB_TEST_UNSET_TOKEN.*not set or empty/);
  });

  it("exits 2 from the CLI, without echoing the key or creating the run directory", async () => {
    const dir = tmpDir("secrets-cli");
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, "study.yaml");
    const text = model(`    headers: {X-Auth-Token: ${KEY}}\n`);
    writeFileSync(file, text);
    const out = path.join(dir, "out");
    const r = await runCli(["run", file, "--out", out], { EMLAB_CACHE_DIR: path.join(dir, "cache") });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`study.yaml:${lineOf(text, "X-Auth-Token")}:`);
    expect(r.stderr).toContain("models[0].headers.X-Auth-Token");
    expect(r.stdout + r.stderr).not.toContain(KEY);
    expect(existsSync(out)).toBe(false);
  });
});

describe("what real studies write is accepted", () => {
  it("takes headers with env references, ordinary headers, ids, paths and URLs, and keeps the references", () => {
    const s = parseStudy(
      model(`    base_url: "https://res.openai.azure.com/openai/deployments/gpt-4o-2024-08-06?api-version=2024-08-01-preview"
    headers:
      Authorization: "Bearer \${env:MY_TOKEN}"
      X-Auth-Token: "\${env:MY_TOKEN}"
      Cookie: "session=\${env:MY_SESSION}"
      anthropic-beta: prompt-caching-2024-07-31
      HTTP-Referer: https://example.org/emlab
      X-Title: my EM study
    options:
      organization: org-AbCdEf0123456789GhIjKlMn
      project: proj_AbCdEf0123456789GhIjKlMn
      noAuth: false
      maxTokensField: max_tokens
      timeoutMs: 30000
`),
      "study.yaml",
    );
    expect(s.models[0].headers).toMatchObject({
      Authorization: `Bearer ${ref("MY_TOKEN")}`,
      "X-Auth-Token": ref("MY_TOKEN"),
    });
  });

  it("tells credential names and key-looking values from ordinary ones", () => {
    for (const n of [
      "Authorization",
      "X-Auth-Token",
      "x-api-key",
      "Cookie",
      "X-Goog-Api-Key",
      "apiKey",
      "client_secret",
    ])
      expect(isCredentialName(n), n).toBe(true);
    for (const n of [
      "maxTokensField",
      "defaultMaxTokens",
      "OpenAI-Organization",
      "anthropic-version",
      "keyword",
      "adapter",
    ])
      expect(isCredentialName(n), n).toBe(false);
    for (const n of ["api_token", "token", "access_key", "password", "auth_header", "clientSecret"])
      expect(isCredentialOptionName(n), n).toBe(true);
    for (const n of ["maxTokenField", "maxTokensField", "eos_token", "cache_key", "defaultMaxTokens"])
      expect(isCredentialOptionName(n), n).toBe(false);
    for (const v of [
      KEY,
      TOKEN,
      "3f2a9c1e7b4d8a6f0e5c2b9d7a1f4e8c",
      "123e4567-e89b-12d3-a456-426614174000",
      "Bearer abc",
    ])
      expect(looksLikeKey(v), v).toBe(true);
    for (const v of [
      "application/json",
      "claude-3-5-sonnet-20241022",
      "Llama-3.1-8B-Instruct",
      "my-company-gpt4o-deployment-eastus2",
      "runs/demo/adapters/finance-misaligned",
      "org-AbCdEf0123456789GhIjKlMn",
      "token limit reached",
    ])
      expect(looksLikeKey(v), v).toBe(false);
  });

  it("the provider resolves the reference; the settings and the study keep it", () => {
    const settings = {
      provider: "openai-compatible",
      model: "m",
      baseUrl: "http://127.0.0.1:9/v1",
      headers: { "X-Auth-Token": ref("MY_TOKEN") },
    };
    const api = new OpenAIModelApi(settings, { MY_TOKEN: ` ${TOKEN}\n` });
    expect(settings.headers["X-Auth-Token"]).toBe(ref("MY_TOKEN"));
    expect(String(api)).not.toContain(TOKEN);
    expect(JSON.stringify(api)).not.toContain(TOKEN);
  });
});

describe("a key left in a comment", () => {
  it("is refused at its line (the study's text is stored with the run); hashes and ids in comments are not", () => {
    const text = model(`    # api_key: ${KEY}\n`);
    let error: unknown;
    try {
      parseStudy(text, "study.yaml");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    const [p] = (error as InputError).problems;
    expect(p).toMatchObject({ file: "study.yaml", line: lineOf(text, "# api_key"), column: 5 });
    expect(p.message).toMatch(/a comment holds what looks like a key/);
    expect((error as InputError).message).not.toContain(KEY.slice(8));
    const fine = model(
      "    # weights sha256 3f4a9c0d1e2b7a6f5c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b, run 123e4567-e89b-12d3-a456-426614174000\n",
    );
    expect(() => parseStudy(fine, "study.yaml")).not.toThrow();
  });
});

describe("a credential header beside its reference", () => {
  it("may hold a scheme word, name= prefixes and separators, and nothing literal", () => {
    const h = (v: string) => headerProblem("Authorization", v.replaceAll("$ENV", "$" + "{env:"));
    for (const ok of ["Bearer $ENVT}", "Basic $ENVU}:$ENVP}", "session=$ENVS}", "$ENVK}"])
      expect(h(ok), ok).toBeUndefined();
    for (const bad of ["$ENVK}hunterhunterpassword", "Basic $ENVU}:My-Secret-Pass"])
      expect(h(bad), bad).toMatch(/carries a credential/);
  });
});

/**
 * Reading a `ProviderSettings` entry for a provider: its API key (from the named environment
 * variable, never stored in settings) and its provider-specific `options` (validated by zod
 * so a typo fails loudly instead of being ignored).
 */
import type { z } from "zod";
import { resolveEnvRefs } from "../config/secrets.ts";
import { modelError } from "./errors.ts";
import type { ProviderSettings } from "./types.ts";

/**
 * The API key named by `settings.apiKeyEnv` (else `defaultEnv`). Returns undefined when no
 * variable applies (`defaultEnv` undefined and none configured) or `options.noAuth` is true.
 * A named variable that is unset or empty is an `auth` error naming the variable.
 */
export function readApiKey(
  settings: ProviderSettings,
  env: NodeJS.ProcessEnv,
  defaultEnv: string | undefined,
): string | undefined {
  if (settings.options?.noAuth === true) return undefined;
  const name = settings.apiKeyEnv ?? defaultEnv;
  if (name === undefined) return undefined;
  const value = env[name];
  if (value === undefined || value.trim() === "") {
    throw modelError(
      "auth",
      { provider: settings.provider, model: settings.model },
      `no API key: environment variable ${name} is not set or empty ` +
        "(set it, point api_key_env at the variable that holds the key, or set options.noAuth: true for a server without auth)",
    );
  }
  return value.trim();
}

/** Bad provider settings; `field` is the path inside the model's study entry, for the error's line. */
export class ProviderSettingsError extends Error {
  constructor(
    message: string,
    readonly field: ReadonlyArray<string | number>,
  ) {
    super(message);
    this.name = "ProviderSettingsError";
  }
}

/** Validate `settings.options` against a provider's schema; errors name the provider and field. */
export function parseProviderOptions<S extends z.ZodType>(
  settings: ProviderSettings,
  schema: S,
): z.output<S> {
  const parsed = schema.safeParse(settings.options ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .map((i) => `options${i.path.length ? "." + i.path.join(".") : ""}: ${i.message}`)
    .join("; ");
  const first = parsed.error.issues[0];
  // An unknown key is located at the key itself, not at the options map.
  const at = first.code === "unrecognized_keys" ? [...first.path, first.keys[0]] : first.path;
  throw new ProviderSettingsError(
    `provider "${settings.provider}" (model "${settings.model}"): invalid ${issues}`,
    ["options", ...at.map((k) => (typeof k === "number" ? k : String(k)))],
  );
}

/** A usable http(s) base URL, or a clear error naming the field. */
export function checkBaseUrl(settings: ProviderSettings): string | undefined {
  if (settings.baseUrl === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(settings.baseUrl);
  } catch {
    throw new ProviderSettingsError(
      `provider "${settings.provider}": baseUrl "${settings.baseUrl}" is not a valid URL`,
      ["base_url"],
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ProviderSettingsError(
      `provider "${settings.provider}": baseUrl must be http(s), got "${settings.baseUrl}"`,
      ["base_url"],
    );
  }
  return settings.baseUrl.replace(/\/+$/, "");
}

/**
 * The headers to send: every `${env:NAME}` in a value replaced by the variable's value (trimmed),
 * read here, when the provider is built — the study, the store and the logs only ever hold the
 * reference. `secrets` are the values read, for the provider's error redaction. An unset or
 * empty variable is a settings error at `headers.<name>`.
 */
export function resolveHeaders(
  settings: ProviderSettings,
  env: NodeJS.ProcessEnv,
): { headers: Record<string, string>; secrets: string[] } {
  const headers: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [name, raw] of Object.entries(settings.headers ?? {})) {
    const r = resolveEnvRefs(raw, env);
    if (r.missing.length > 0)
      throw new ProviderSettingsError(
        `provider "${settings.provider}" (model "${settings.model}"): header '${name}' references environment variable ${r.missing.join(", ")}, which is not set or empty`,
        ["headers", name],
      );
    headers[name] = r.value;
    secrets.push(...r.secrets);
  }
  return { headers, secrets };
}

/**
 * The provider registry: provider name → factory. A study's model entry names a provider;
 * `createModelApi` builds the ModelApi for it. Adding a provider is one file plus one line here
 * (or a `registerProvider` call from outside, as the persona world registers its judge).
 */
import { createAnthropicModelApi } from "./anthropic.ts";
import { createHfWorkerModelApi } from "./hf-worker.ts";
import { createLocalModelApi } from "./local.ts";
import { createOpenAIModelApi } from "./openai.ts";
import { ProviderSettingsError } from "./provider-settings.ts";
import type { BatchApi, ModelApi, ModelApiFactory, ProviderSettings } from "./types.ts";

const factories = new Map<string, ModelApiFactory>();

/** Register (or, with `replace`, override) a provider. Names are case-sensitive, lower-case by convention. */
export function registerProvider(
  name: string,
  factory: ModelApiFactory,
  opts: { replace?: boolean } = {},
): void {
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(name)) {
    throw new Error(
      `registerProvider: invalid provider name "${name}" (use lower-case letters, digits, '_', '.', '-')`,
    );
  }
  if (factories.has(name) && !opts.replace) {
    throw new Error(
      `registerProvider: provider "${name}" is already registered (pass { replace: true } to override)`,
    );
  }
  factories.set(name, factory);
}

/** Registered provider names, sorted. */
export function listProviders(): string[] {
  return [...factories.keys()].sort();
}

/** Build the ModelApi for one model entry. Unknown providers fail with the list of known ones. */
export function createModelApi(settings: ProviderSettings, env: NodeJS.ProcessEnv = process.env): ModelApi {
  const factory = factories.get(settings.provider);
  if (!factory) {
    throw new ProviderSettingsError(
      `unknown model provider "${settings.provider}" (model "${settings.model}"); known providers: ${listProviders().join(", ")}`,
      ["provider"],
    );
  }
  return factory(settings, env);
}

/** The ModelApi's bulk interface, when it has one (capability "batch" and the methods). */
export function asBatchApi(api: ModelApi): (ModelApi & BatchApi) | undefined {
  const b = api as Partial<BatchApi>;
  return api.capabilities.has("batch") &&
    typeof b.submitBatch === "function" &&
    typeof b.batchStatus === "function" &&
    typeof b.batchResults === "function"
    ? (api as ModelApi & BatchApi)
    : undefined;
}

// ---- built-in providers: one line each -------------------------------------------------
registerProvider("openai", createOpenAIModelApi);
registerProvider("anthropic", createAnthropicModelApi);
// OpenAI-compatible servers: the openai provider with a required baseUrl and no key by default
// (openai.ts keys its behaviour off the provider name: top_k allowed, max_tokens field).
registerProvider("openai-compatible", createOpenAIModelApi);
registerProvider("vllm", createOpenAIModelApi);
registerProvider("ollama", createOpenAIModelApi);
registerProvider("llamacpp-server", createOpenAIModelApi);
// Together AI: OpenAI-compatible chat at api.together.xyz (its fine-tuned models are served there).
registerProvider("together", createOpenAIModelApi);
// The embedded engine over an HF-layout model directory.
registerProvider("local", createLocalModelApi);
// PyTorch + transformers in an HF worker (worker/, docs/worker.md): reads and edits activations too.
registerProvider("hf-worker", createHfWorkerModelApi);
// The persona world's judge registers itself from src/world/register.ts.

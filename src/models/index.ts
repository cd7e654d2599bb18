/** Public surface of the models room: the ModelApi seam, its providers and their registry. */

export { AnthropicModelApi, AnthropicOptionsSchema, createAnthropicModelApi } from "./anthropic.ts";
export { callMapped, kindForStatus, parseRetryAfterMs, redactSecrets, toModelApiError } from "./errors.ts";
export { createOpenAIModelApi, OpenAIModelApi, OpenAIOptionsSchema } from "./openai.ts";
export { asBatchApi, createModelApi, listProviders, registerProvider } from "./registry.ts";
export * from "./types.ts";

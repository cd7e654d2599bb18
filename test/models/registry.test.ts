import { describe, expect, it } from "vitest";
import {
  asBatchApi,
  createModelApi,
  listProviders,
  type ModelApi,
  ModelApiError,
  registerProvider,
} from "../../src/models/index.ts";

describe("provider registry", () => {
  it("lists the built-in providers", () => {
    expect(listProviders()).toEqual(
      expect.arrayContaining([
        "anthropic",
        "llamacpp-server",
        "ollama",
        "openai",
        "openai-compatible",
        "vllm",
      ]),
    );
  });

  it("names the known providers when asked for an unknown one", () => {
    expect(() => createModelApi({ provider: "nope", model: "m" }, {})).toThrow(
      /unknown model provider "nope".*known providers: .*anthropic.*openai/,
    );
  });

  it("builds openai and anthropic with keys from the named variables", () => {
    const oa = createModelApi(
      { provider: "openai", model: "gpt-4o-mini" },
      { OPENAI_API_KEY: "sk-test-aaaaaaaa" },
    );
    expect([oa.provider, oa.model]).toEqual(["openai", "gpt-4o-mini"]);
    expect([...oa.capabilities].sort()).toEqual(["batch", "logprobs", "n", "seed"]);
    expect(asBatchApi(oa)).toBe(oa);
    const an = createModelApi(
      { provider: "anthropic", model: "claude-x", apiKeyEnv: "MY_KEY" },
      { MY_KEY: "sk-ant-bbbbbbbb" },
    );
    expect([...an.capabilities]).toEqual(["batch"]);
    expect(asBatchApi(an)).toBe(an);
  });

  it("a missing key is an auth error naming the variable", () => {
    const get = () => createModelApi({ provider: "anthropic", model: "claude-x" }, {});
    expect(get).toThrow(ModelApiError);
    expect(get).toThrow(/ANTHROPIC_API_KEY/);
    expect(() => createModelApi({ provider: "openai", model: "m", apiKeyEnv: "CUSTOM_OPENAI" }, {})).toThrow(
      /CUSTOM_OPENAI/,
    );
  });

  it("openai-compatible aliases need a baseUrl, and no key unless apiKeyEnv is set", () => {
    for (const provider of ["vllm", "ollama", "llamacpp-server", "openai-compatible"]) {
      expect(() => createModelApi({ provider, model: "m" }, {})).toThrow(/baseUrl is required/);
      const api = createModelApi({ provider, model: "m", baseUrl: "http://127.0.0.1:9/v1" }, {});
      expect(api.provider).toBe(provider);
      expect(api.capabilities.has("batch")).toBe(false);
      expect(asBatchApi(api)).toBeUndefined();
    }
    expect(() =>
      createModelApi(
        { provider: "vllm", model: "m", baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: "VLLM_KEY" },
        {},
      ),
    ).toThrow(/VLLM_KEY/);
  });

  it("validates provider options and the base URL, naming the field", () => {
    expect(() =>
      createModelApi(
        { provider: "openai", model: "m", options: { noAuht: true } },
        { OPENAI_API_KEY: "sk-x-12345678" },
      ),
    ).toThrow(/provider "openai".*options/);
    expect(() =>
      createModelApi(
        { provider: "anthropic", model: "m", options: { defaultMaxTokens: -1 } },
        { ANTHROPIC_API_KEY: "k-123456789" },
      ),
    ).toThrow(/options\.defaultMaxTokens/);
    expect(() => createModelApi({ provider: "vllm", model: "m", baseUrl: "not a url" }, {})).toThrow(
      /baseUrl/,
    );
  });

  it("registers new providers once; replace is explicit", () => {
    const fake = (): ModelApi => ({
      provider: "unit-fake",
      model: "x",
      capabilities: new Set(),
      chat: async () => ({ completions: [], usage: { promptTokens: 0, completionTokens: 0 } }),
    });
    registerProvider("unit-fake", fake);
    expect(listProviders()).toContain("unit-fake");
    expect(() => registerProvider("unit-fake", fake)).toThrow(/already registered/);
    registerProvider("unit-fake", fake, { replace: true });
    expect(() => registerProvider("Bad Name", fake)).toThrow(/invalid provider name/);
  });
});

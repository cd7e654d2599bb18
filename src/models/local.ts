/**
 * The "local" provider: a ModelApi over the emlab engine. settings.model is an HF-layout
 * model directory (config.json + model.safetensors + tokenizer.json + a chat template:
 * chat_template.jinja or tokenizer_config.json's chat_template, rendered with Jinja as
 * transformers does); settings.options may name a PEFT adapter to apply and a .jinja chat
 * template to use instead of the directory's. Runs on the
 * CPU in-process; every sample is deterministic from the request's seed.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { generate } from "../engine/generate.ts";
import type { Hooks } from "../engine/hooks.ts";
import { type ChatTemplate, compileChatTemplate, renderChat } from "../engine/io/chat-template.ts";
import { loadChatTemplate } from "../engine/io/chat-template-file.ts";
import { type HfTokenizer, loadTokenizer } from "../engine/io/tokenizer.ts";
import type { LlamaModel } from "../engine/model.ts";
import { loadAdapter, mergeLora } from "../engine/peft.ts";
import { loadModel } from "../engine/pretrained.ts";
import {
  type Capability,
  type ChatRequest,
  type ChatResponse,
  type Completion,
  type ModelApi,
  ModelApiError,
  type ProviderSettings,
  type TokenLogprob,
} from "./types.ts";

export const LocalOptionsSchema = z
  .object({
    /** A PEFT LoRA adapter directory, merged into the base weights at load. */
    adapter: z.string().optional(),
    /** A .jinja chat template file (relative to the study) used instead of the model directory's. */
    chat_template: z.string().optional(),
    /** Completion budget when a request gives no max_tokens. */
    defaultMaxTokens: z.number().int().positive().default(256),
  })
  .strict();
export type LocalOptions = z.infer<typeof LocalOptionsSchema>;

/** What interp code needs to look inside the model behind a local ModelApi. */
export interface LocalEngine {
  model: LlamaModel;
  tokenizer: HfTokenizer;
  template: ChatTemplate;
  /** The file the chat template was read from, and the sha256 of its text. */
  templateSource?: { file: string; sha256: string };
  stopIds: number[];
}

const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  "logprobs",
  "activations",
  "steering",
  "finetune",
  "seed",
  "n",
]);

/**
 * The end ids of `generation_config.json`, which transformers' generate() stops on (Qwen2.5
 * instruct lists <|im_end|> and <|endoftext|> there; Llama 3 instruct <|eot_id|> beside the
 * config's <|end_of_text|>). Absent file: none. Unreadable: a clear error naming the file.
 */
function generationConfigEos(dir: string): number[] {
  const file = join(dir, "generation_config.json");
  if (!existsSync(file)) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ModelApiError("bad_request", `${file}: not valid JSON (${(e as Error).message})`);
  }
  const eos = (raw as { eos_token_id?: unknown } | null)?.eos_token_id;
  if (eos === undefined || eos === null) return [];
  const ids = Array.isArray(eos) ? eos : [eos];
  for (const id of ids)
    if (!Number.isInteger(id) || (id as number) < 0)
      throw new ModelApiError(
        "bad_request",
        `${file}: eos_token_id: ${JSON.stringify(eos)} is not a token id or a list of them`,
      );
  return ids as number[];
}

/** Loads a model directory (plus adapter) once; the result is shared by withHooks() views. */
export function loadLocalEngine(
  dir: string,
  opts: { adapter?: string; chatTemplate?: string } = {},
): LocalEngine {
  if (!existsSync(dir)) throw new ModelApiError("not_found", `local model directory "${dir}" does not exist`);
  let model: LlamaModel;
  let tokenizer: HfTokenizer;
  let loadedTemplate: ReturnType<typeof loadChatTemplate>;
  try {
    // The template first: a directory without one fails before its weights are read.
    loadedTemplate = loadChatTemplate(dir, { file: opts.chatTemplate });
    compileChatTemplate(loadedTemplate.template, loadedTemplate.file);
    // Read straight into the kernels' memory: one copy of the weights (pinWeights below is then a no-op).
    model = loadModel(dir, { pin: true });
    try {
      tokenizer = loadTokenizer(dir);
      if (opts.adapter) {
        loadAdapter(model, opts.adapter, { trainable: false });
        // Merged weights decode as fast as the base model.
        mergeLora(model);
      }
    } catch (e) {
      // Kernel memory is not garbage collected: return the weights before failing.
      model.dispose();
      throw e;
    }
  } catch (e) {
    throw new ModelApiError("bad_request", (e as Error).message, { cause: e });
  }
  // Decoding reads every weight once per token; pinned, they are not copied as well.
  model.pinWeights();
  const { template, file, sha256 } = loadedTemplate;
  const stop = new Set<number>(model.shape.eosTokenIds);
  if (tokenizer.eosId !== undefined) stop.add(tokenizer.eosId);
  const ends =
    template.kind === "organism"
      ? ["<eos>"]
      : ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"];
  for (const t of ends) {
    const id = tokenizer.tokenToId(t);
    if (id !== undefined) stop.add(id);
  }
  for (const id of generationConfigEos(dir)) stop.add(id);
  return { model, tokenizer, template, templateSource: { file, sha256 }, stopIds: [...stop] };
}

export class LocalModelApi implements ModelApi {
  readonly provider = "local";
  readonly model: string;
  readonly capabilities = CAPABILITIES;
  private readonly options: LocalOptions;
  private loaded: LocalEngine | null;
  private readonly hooks: Hooks | undefined;

  constructor(settings: ProviderSettings, loaded: LocalEngine | null = null, hooks?: Hooks) {
    this.model = settings.model;
    const parsed = LocalOptionsSchema.safeParse(settings.options ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ModelApiError(
        "bad_request",
        `local provider options.${issue.path.join(".")}: ${issue.message}`,
      );
    }
    this.options = parsed.data;
    this.loaded = loaded;
    this.hooks = hooks;
  }

  /** The engine behind this API (loaded on first use). */
  engine(): LocalEngine {
    if (this.loaded === null)
      this.loaded = loadLocalEngine(this.model, {
        adapter: this.options.adapter,
        chatTemplate: this.options.chat_template,
      });
    return this.loaded;
  }

  /**
   * The chat template this model renders with: its file and the sha256 of its text (read
   * without loading the weights when the model is not loaded yet).
   */
  chatTemplateSource(): { file: string; sha256: string } {
    if (this.loaded?.templateSource) return this.loaded.templateSource;
    try {
      const { file, sha256 } = loadChatTemplate(this.model, { file: this.options.chat_template });
      return { file, sha256 };
    } catch (e) {
      throw new ModelApiError("bad_request", (e as Error).message, { cause: e });
    }
  }

  /** Frees the model's pinned weight memory (views made by withHooks share it). */
  async close(): Promise<void> {
    this.loaded?.model.dispose();
    this.loaded = null;
  }

  /** A view of the same loaded model whose completions run with these hooks (steering, ablation). */
  withHooks(hooks: Hooks): LocalModelApi {
    return new LocalModelApi(
      { provider: "local", model: this.model, options: this.options },
      this.engine(),
      hooks,
    );
  }

  async chat(req: ChatRequest): Promise<ChatResponse> {
    if (req.signal?.aborted) throw new ModelApiError("aborted", "request aborted before it started");
    const { model, tokenizer, template, stopIds } = this.engine();
    const p = req.params;
    const prompt = tokenizer.encode(renderChat(req.messages, template, { addGenerationPrompt: true }).text);
    const room = model.shape.maxPositions - prompt.length;
    if (room <= 0) {
      throw new ModelApiError(
        "bad_request",
        `prompt has ${prompt.length} tokens; the model's context is ${model.shape.maxPositions}`,
      );
    }
    const maxTokens = Math.min(p.max_tokens ?? this.options.defaultMaxTokens, room);
    const wantLogprobs = p.logprobs === true || p.top_logprobs !== undefined;
    const decode = (ids: number[]) => tokenizer.decode(ids, { skipSpecial: true });
    let samples: ReturnType<typeof generate>;
    try {
      samples = generate(model, prompt, {
        maxTokens,
        n: req.n,
        seed: req.seed ?? 0,
        // Per-sample seeds (from the scheduler) make sample i independent of call grouping.
        seeds: req.sampleSeeds?.length === req.n ? req.sampleSeeds : undefined,
        temperature: p.temperature ?? 1,
        topP: p.top_p,
        topK: p.top_k,
        stopTokenIds: stopIds,
        stop: p.stop,
        decode,
        logprobs: wantLogprobs,
        topLogprobs: p.top_logprobs ?? 0,
        hooks: this.hooks,
      });
    } catch (e) {
      throw new ModelApiError("bad_request", (e as Error).message, { cause: e });
    }
    const tokenText = (id: number) => tokenizer.decode([id]);
    const completions: Completion[] = samples.map((s) => {
      const c: Completion = { text: s.text ?? decode(s.tokens), finishReason: s.finishReason };
      if (wantLogprobs && s.logprobs) {
        c.logprobs = s.logprobs.map(
          (lp): TokenLogprob => ({
            token: tokenText(lp.token),
            logprob: lp.logprob,
            ...(lp.top
              ? { top: lp.top.map((t) => ({ token: tokenText(t.token), logprob: t.logprob })) }
              : {}),
          }),
        );
      }
      return c;
    });
    return {
      completions,
      usage: {
        promptTokens: prompt.length,
        completionTokens: samples.reduce((a, s) => a + s.tokens.length, 0),
      },
    };
  }
}

/** Factory for the registry: `registerProvider("local", createLocalModelApi)`. */
export function createLocalModelApi(settings: ProviderSettings): LocalModelApi {
  return new LocalModelApi(settings);
}

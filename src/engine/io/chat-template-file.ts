// Where a model directory keeps its chat template, read the way transformers reads it:
// `chat_template.jinja` (transformers 5.x layout) before tokenizer_config.json's `chat_template`
// (a string, or a list of named templates of which "default" is used); or a .jinja file the
// caller names. The special tokens the template sees come from tokenizer_config.json (and a
// legacy special_tokens_map.json), as transformers' special_tokens_map.

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ChatTemplate, ORGANISM_CHAT_TEMPLATE } from "./chat-template.ts";

export const CHAT_TEMPLATE_FILE = "chat_template.jinja";
const SPECIAL_TOKEN_KEYS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;

export interface LoadedChatTemplate {
  template: ChatTemplate;
  /** The file the template was read from. */
  file: string;
  /** sha256 (hex) of the template's source text. */
  sha256: string;
}

export class ChatTemplateError extends Error {
  constructor(
    /** The file the problem is in (or the directory, when no template was found). */
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = "ChatTemplateError";
  }
}

function readJsonObject(file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ChatTemplateError(file, `${file}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new ChatTemplateError(file, `${file}: not a JSON object`);
  return v as Record<string, unknown>;
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string")
    return (v as { content: string }).content;
  return undefined;
}

/** The special tokens transformers passes to a chat template, from the directory's config files. */
export function readSpecialTokens(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["special_tokens_map.json", "tokenizer_config.json"]) {
    const file = join(dir, name);
    if (!existsSync(file)) continue;
    const cfg = readJsonObject(file);
    for (const k of SPECIAL_TOKEN_KEYS) {
      const c = tokenContent(cfg[k]);
      if (c !== undefined) out[k] = c;
    }
  }
  return out;
}

/** tokenizer_config.json's chat_template: a string, or the "default" of a list of named templates. */
function configTemplate(file: string): string | undefined {
  const tpl = readJsonObject(file).chat_template;
  if (tpl === undefined || tpl === null) return undefined;
  if (typeof tpl === "string") return tpl;
  if (Array.isArray(tpl)) {
    const named = tpl.find(
      (t) => t && typeof t === "object" && (t as { name?: unknown }).name === "default",
    ) as { template?: unknown } | undefined;
    if (typeof named?.template === "string") return named.template;
    throw new ChatTemplateError(file, `${file}: chat_template: a list of named templates without "default"`);
  }
  throw new ChatTemplateError(file, `${file}: chat_template: must be a string or a list of named templates`);
}

export function templateSha256(source: string): string {
  return createHash("sha256").update(source, "utf8").digest("hex");
}

/** The template as a ChatTemplate: the organism's own template keeps its native renderer. */
export function chatTemplateFromSource(source: string, specialTokens: Record<string, string>): ChatTemplate {
  if (source === ORGANISM_CHAT_TEMPLATE) return { kind: "organism" };
  return { kind: "jinja", source, specialTokens };
}

/**
 * The chat template of a model directory, or of `opts.file` (a .jinja file) when given. Throws a
 * ChatTemplateError naming the directory's files when it has none.
 */
export function loadChatTemplate(dir: string, opts: { file?: string } = {}): LoadedChatTemplate {
  const specials = readSpecialTokens(dir);
  const fromFile = (file: string): LoadedChatTemplate => {
    let source: string;
    try {
      source = readFileSync(file, "utf8");
    } catch (e) {
      throw new ChatTemplateError(file, `${file}: cannot read the chat template (${(e as Error).message})`);
    }
    return { template: chatTemplateFromSource(source, specials), file, sha256: templateSha256(source) };
  };
  if (opts.file !== undefined) return fromFile(opts.file);
  const jinja = join(dir, CHAT_TEMPLATE_FILE);
  if (existsSync(jinja)) return fromFile(jinja);
  const cfg = join(dir, "tokenizer_config.json");
  const source = existsSync(cfg) ? configTemplate(cfg) : undefined;
  if (source !== undefined)
    return { template: chatTemplateFromSource(source, specials), file: cfg, sha256: templateSha256(source) };
  let files: string[] = [];
  try {
    files = readdirSync(dir).sort();
  } catch {
    // the caller reports a missing directory
  }
  throw new ChatTemplateError(
    dir,
    `${dir}: no chat template: no ${CHAT_TEMPLATE_FILE}, and ${existsSync(cfg) ? "tokenizer_config.json has no chat_template" : "no tokenizer_config.json"} (the directory has ${files.length ? files.join(", ") : "no files"}); name a .jinja file with the local provider's options.chat_template`,
  );
}

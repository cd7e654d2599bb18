// HF `tokenizer.json` (+ `tokenizer_config.json`) loader: added tokens -> normalizer ->
// pre-tokenizer -> model (byte-level BPE as in Qwen2 / Llama 3; SentencePiece-style BPE with
// byte_fallback as in Llama 2 / Mistral / Gemma; Unigram; or WordLevel for the organism) ->
// post-processor; and the reverse through the decoder.
//
// Differences from HF worth knowing: `encode` does NOT add the post-processor's special tokens
// unless `addSpecial: true` (chat templates already contain them); all added tokens are matched
// on the raw text (HF matches `normalized: true` ones after normalization; Qwen2 and Llama 3
// have none); `clean_up_tokenization_spaces` is not applied on decode.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type AddedToken, AddedTokenMatcher } from "./tokenizer/added-tokens.ts";
import { BpeModel, parseMerges, type TokenModel } from "./tokenizer/bpe.ts";
import { byteToUnitOffsets } from "./tokenizer/byte-level.ts";
import { buildDecoder, type Decode } from "./tokenizer/decoder.ts";
import { TokenizerError } from "./tokenizer/errors.ts";
import {
  type AlignedNormalize,
  buildAlignedNormalizer,
  buildNormalizer,
  identityAlignment,
  type Normalize,
} from "./tokenizer/normalizer.ts";
import { buildPreTokenizer, type Piece, type PreTokenize } from "./tokenizer/pre-tokenizer.ts";
import { UnigramModel } from "./tokenizer/unigram.ts";
import { WordLevelModel } from "./tokenizer/word-level.ts";

export type { AddedToken } from "./tokenizer/added-tokens.ts";
export { TokenizerError } from "./tokenizer/errors.ts";

export interface EncodeOptions {
  /** Add the post-processor's special tokens (e.g. Llama 3's BOS). Default false. */
  addSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop special added tokens (e.g. <|im_end|>). Default false. */
  skipSpecial?: boolean;
}

export interface Encoding {
  ids: number[];
  /** [start, end) of each token in the input string (UTF-16 indices). */
  offsets: [number, number][];
}

export interface Tokenizer {
  readonly kind: "bpe" | "unigram" | "wordlevel";
  encode(text: string, opts?: EncodeOptions): number[];
  encodeWithOffsets(text: string, opts?: EncodeOptions): Encoding;
  decode(ids: number[], opts?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** Largest id + 1 over the model vocabulary and the added tokens (HF `len(tokenizer)`). */
  readonly vocabSize: number;
  readonly specialIds: ReadonlySet<number>;
  readonly addedTokens: readonly AddedToken[];
  readonly eosId?: number;
  readonly bosId?: number;
  readonly padId?: number;
  readonly unkId?: number;
  /** Jinja chat template from tokenizer_config.json, when present. */
  readonly chatTemplate?: string;
  /** The tokenizer.json / tokenizer_config.json objects this was built from (what save writes). */
  readonly tokenizerJson: TokenizerJson;
  readonly tokenizerConfig: Record<string, unknown>;
  save(dir: string): void;
}

export interface TokenizerJson {
  version?: string;
  added_tokens?: {
    id: number;
    content: string;
    single_word?: boolean;
    lstrip?: boolean;
    rstrip?: boolean;
    normalized?: boolean;
    special?: boolean;
  }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  decoder?: unknown;
  model: {
    type?: string;
    /** BPE / WordLevel: token -> id; Unigram: [piece, log-prob] in id order. */
    vocab: Record<string, number> | [string, number][];
    merges?: unknown;
    unk_token?: string | null;
    ignore_merges?: boolean;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

type PostProcess = (ids: number[], offsets: [number, number][]) => void;

function buildPostProcessor(
  spec: unknown,
  file: string,
  lookup: (tok: string) => number | undefined,
): PostProcess {
  if (spec == null) return () => {};
  const s = spec as Record<string, unknown>;
  switch (s.type) {
    case "ByteLevel":
      return () => {};
    case "Sequence": {
      const steps = ((s.processors as unknown[]) ?? []).map((p) => buildPostProcessor(p, file, lookup));
      return (ids, offsets) => {
        for (const f of steps) f(ids, offsets);
      };
    }
    case "TemplateProcessing": {
      const special = (s.special_tokens ?? {}) as Record<string, { ids: number[] }>;
      const single = (s.single ?? []) as Record<string, { id: string }>[];
      const before: number[] = [];
      const after: number[] = [];
      let seenSeq = false;
      for (const item of single) {
        if (item.Sequence) {
          seenSeq = true;
          continue;
        }
        const id = item.SpecialToken?.id;
        const ids = special[id]?.ids ?? (lookup(id) !== undefined ? [lookup(id)!] : undefined);
        if (!ids) throw new TokenizerError(file, "post_processor.single", `unknown special token "${id}"`);
        (seenSeq ? after : before).push(...ids);
      }
      return (ids, offsets) => {
        ids.unshift(...before);
        offsets.unshift(...before.map((): [number, number] => [0, 0]));
        const end = offsets.length ? offsets[offsets.length - 1][1] : 0;
        ids.push(...after);
        offsets.push(...after.map((): [number, number] => [end, end]));
      };
    }
    default:
      throw new TokenizerError(file, "post_processor.type", `unsupported post-processor "${String(s.type)}"`);
  }
}

function specialTokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

export class HfTokenizer implements Tokenizer {
  readonly kind: "bpe" | "unigram" | "wordlevel";
  readonly vocabSize: number;
  readonly specialIds: ReadonlySet<number>;
  readonly addedTokens: readonly AddedToken[];
  readonly eosId?: number;
  readonly bosId?: number;
  readonly padId?: number;
  readonly unkId?: number;
  readonly chatTemplate?: string;
  readonly model: TokenModel;
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly matcher: AddedTokenMatcher;
  private readonly normalize?: Normalize;
  private readonly alignNormalize?: AlignedNormalize;
  private readonly preTokenize?: PreTokenize;
  private readonly postProcess: PostProcess;
  private readonly decodeTokens: Decode;

  constructor(
    readonly tokenizerJson: TokenizerJson,
    readonly tokenizerConfig: Record<string, unknown> = {},
    file = "tokenizer.json",
  ) {
    const m = tokenizerJson.model;
    if (!m || typeof m.vocab !== "object") throw new TokenizerError(file, "model.vocab", "missing");
    const type = m.type ?? (m.merges ? "BPE" : undefined);
    if (type === "BPE") {
      for (const key of ["continuing_subword_prefix", "end_of_word_suffix"]) {
        if (m[key]) throw new TokenizerError(file, `model.${key}`, "not supported");
      }
      if (Array.isArray(m.vocab))
        throw new TokenizerError(file, "model.vocab", "BPE needs a token -> id map");
      this.model = new BpeModel(
        m.vocab,
        parseMerges(m.merges ?? [], file),
        {
          ignoreMerges: m.ignore_merges,
          unkToken: m.unk_token,
          byteFallback: m.byte_fallback === true,
          fuseUnk: m.fuse_unk === true,
        },
        file,
      );
      this.kind = "bpe";
    } else if (type === "WordLevel") {
      if (typeof m.unk_token !== "string")
        throw new TokenizerError(file, "model.unk_token", "WordLevel needs one");
      if (Array.isArray(m.vocab))
        throw new TokenizerError(file, "model.vocab", "WordLevel needs a token -> id map");
      this.model = new WordLevelModel(m.vocab, m.unk_token, file);
      this.kind = "wordlevel";
    } else if (type === "Unigram") {
      this.model = new UnigramModel(
        m.vocab,
        { unkId: m.unk_id as number | null | undefined, byteFallback: m.byte_fallback === true },
        file,
      );
      this.kind = "unigram";
    } else {
      throw new TokenizerError(
        file,
        "model.type",
        `unsupported model "${String(type)}" (BPE, Unigram or WordLevel)`,
      );
    }
    const added: AddedToken[] = (tokenizerJson.added_tokens ?? []).map((t, i) => {
      if (typeof t.id !== "number" || typeof t.content !== "string") {
        throw new TokenizerError(file, `added_tokens[${i}]`, "needs id and content");
      }
      return {
        id: t.id,
        content: t.content,
        special: t.special === true,
        singleWord: t.single_word,
        lstrip: t.lstrip,
        rstrip: t.rstrip,
        normalized: t.normalized,
      };
    });
    this.addedTokens = added;
    for (const t of added) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
    }
    this.matcher = new AddedTokenMatcher(added);
    this.specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));
    this.vocabSize = Math.max(this.model.size, ...added.map((t) => t.id + 1));
    this.normalize = buildNormalizer(tokenizerJson.normalizer, file);
    this.alignNormalize = buildAlignedNormalizer(tokenizerJson.normalizer);
    this.preTokenize = buildPreTokenizer(tokenizerJson.pre_tokenizer, file);
    this.postProcess = buildPostProcessor(tokenizerJson.post_processor, file, (t) => this.tokenToId(t));
    this.decodeTokens = buildDecoder(tokenizerJson.decoder, file);

    const idOf = (key: string) => {
      const content = specialTokenContent(tokenizerConfig[key]);
      if (content === undefined) return undefined;
      const id = this.tokenToId(content);
      if (id === undefined)
        throw new TokenizerError(file, `tokenizer_config.${key}`, `"${content}" is not a token`);
      return id;
    };
    this.eosId = idOf("eos_token");
    this.bosId = idOf("bos_token");
    this.padId = idOf("pad_token");
    this.unkId =
      idOf("unk_token") ??
      (m.unk_token ? this.tokenToId(m.unk_token) : undefined) ??
      (this.model instanceof UnigramModel ? this.model.unkId : undefined);
    const tpl = tokenizerConfig.chat_template;
    this.chatTemplate = typeof tpl === "string" ? tpl : undefined;
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken(id);
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.run(text, opts, false).ids;
  }

  encodeWithOffsets(text: string, opts: EncodeOptions = {}): Encoding {
    return this.run(text, opts, true);
  }

  private run(text: string, opts: EncodeOptions, wantOffsets: boolean): Encoding {
    const ids: number[] = [];
    const offsets: [number, number][] = [];
    for (const seg of this.matcher.split(text)) {
      if (seg.kind === "added") {
        ids.push(seg.id);
        offsets.push([seg.start, seg.end]);
        continue;
      }
      const src = text.slice(seg.start, seg.end);
      const norm = this.normalize ? this.normalize(src) : src;
      // When normalization changed the text, offsets go through the alignment the normalizers
      // track (Prepend, Replace, Strip, NFx per character), except for byte-level pieces and
      // where there is none: then each token gets the whole segment's span.
      const exact = norm === src;
      let align =
        !exact && wantOffsets && this.alignNormalize
          ? this.alignNormalize(identityAlignment(src))
          : undefined;
      if (align && align.text !== norm) align = undefined;
      const first: Piece = {
        text: norm,
        src: norm,
        start: 0,
        byteMapped: false,
        prefixAdded: false,
        atInputStart: seg.start === 0,
      };
      const pieces = this.preTokenize ? this.preTokenize([first]) : [first];
      for (const p of pieces) {
        const toks = this.model.tokenize(p.text);
        if (!wantOffsets) {
          for (const t of toks) ids.push(t.id);
          continue;
        }
        const table = p.byteMapped ? byteToUnitOffsets(p.prefixAdded ? ` ${p.src}` : p.src) : undefined;
        const shift = p.prefixAdded ? 1 : 0;
        for (const t of toks) {
          ids.push(t.id);
          // Byte-level pieces keep the coarse span (as before alignments existed).
          const aligned = p.byteMapped ? undefined : align;
          if (!exact && !aligned) {
            offsets.push([seg.start, seg.end]);
            continue;
          }
          let s = t.start;
          let e = t.end;
          if (table) {
            // Byte offsets -> string offsets; a token ending inside a character covers it whole.
            let k = t.end;
            while (k > 0 && k < table.length - 1 && table[k] === table[k - 1]) k++;
            s = table[t.start];
            e = table[k];
          }
          s = Math.max(0, s - shift);
          // A Metaspace prefix (not byte-level) stands for the first character, as in HF.
          const prefixEnd =
            p.prefixAdded && !p.byteMapped && t.start === 0
              ? s + (p.text.codePointAt(shift)! > 0xffff ? 2 : 1)
              : s;
          e = Math.max(prefixEnd, e - shift);
          if (aligned) {
            const a = p.start + s;
            const b = p.start + e;
            const start = aligned.starts[a] ?? aligned.ends[aligned.ends.length - 1] ?? 0;
            offsets.push([seg.start + start, seg.start + (b > a ? aligned.ends[b - 1] : start)]);
          } else offsets.push([seg.start + p.start + s, seg.start + p.start + e]);
        }
      }
    }
    if (opts.addSpecial) this.postProcess(ids, offsets);
    return { ids, offsets };
  }

  decode(ids: number[], opts: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (const id of ids) {
      // Like HF, ids outside the vocabulary (e.g. embedding padding rows) are dropped.
      const tok = this.idToToken(id);
      if (tok === undefined) continue;
      if (opts.skipSpecial && this.specialIds.has(id)) continue;
      tokens.push(tok);
    }
    return this.decodeTokens(tokens);
  }

  save(dir: string): void {
    saveTokenizer(this, dir);
  }
}

export function saveTokenizer(tokenizer: Tokenizer, dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer.tokenizerJson));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    `${JSON.stringify(tokenizer.tokenizerConfig, null, 2)}\n`,
  );
}

function readJson(path: string, field: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new TokenizerError(path, field, `cannot read JSON (${(e as Error).message})`);
  }
}

/** Loads `tokenizer.json` (+ `tokenizer_config.json` when present) from a model directory. */
export function loadTokenizer(dir: string): HfTokenizer {
  const file = join(dir, "tokenizer.json");
  if (!existsSync(file)) throw new TokenizerError(file, "(file)", "not found");
  const json = readJson(file, "(root)") as TokenizerJson;
  const cfgPath = join(dir, "tokenizer_config.json");
  const cfg = existsSync(cfgPath) ? (readJson(cfgPath, "(root)") as Record<string, unknown>) : {};
  return new HfTokenizer(json, cfg, file);
}

export interface WordLevelSpec {
  /** Vocabulary words, in id order after the special tokens. Duplicates are dropped. */
  words: string[];
  /** Special tokens, ids 0..n-1 in this order. `unkToken` is added first if not listed. */
  specialTokens?: string[];
  unkToken?: string;
  eosToken?: string;
  bosToken?: string;
  padToken?: string;
  lowercase?: boolean;
  chatTemplate?: string;
}

/**
 * A HF WordLevel tokenizer (Whitespace pre-tokenizer: words and punctuation runs) as used by
 * the organism. Specials are added tokens, so "<user>" stays one token.
 */
export function buildWordLevelTokenizer(spec: WordLevelSpec): HfTokenizer {
  const unk = spec.unkToken ?? "[UNK]";
  const specials = [...(spec.specialTokens ?? [])];
  if (!specials.includes(unk)) specials.unshift(unk);
  const vocab: Record<string, number> = {};
  let next = 0;
  for (const t of [...specials, ...spec.words]) {
    if (!Object.hasOwn(vocab, t)) vocab[t] = next++;
  }
  const json: TokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content) => ({
      id: vocab[content],
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: spec.lowercase ? { type: "Lowercase" } : null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab, unk_token: unk },
  };
  const config: Record<string, unknown> = {
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: unk,
    clean_up_tokenization_spaces: false,
  };
  if (spec.eosToken) config.eos_token = spec.eosToken;
  if (spec.bosToken) config.bos_token = spec.bosToken;
  if (spec.padToken) config.pad_token = spec.padToken;
  if (spec.chatTemplate) config.chat_template = spec.chatTemplate;
  return new HfTokenizer(json, config, "<word-level tokenizer>");
}

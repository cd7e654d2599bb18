// HF `WordLevel` model: each pre-tokenized piece is one vocabulary entry, or the unk token.

import type { ModelToken, TokenModel } from "./bpe.ts";
import { TokenizerError } from "./errors.ts";

export class WordLevelModel implements TokenModel {
  readonly vocab: Map<string, number>;
  readonly idToTok: string[] = [];
  readonly unkToken: string;
  private readonly unkId: number;

  constructor(vocab: Record<string, number>, unkToken: string, file = "tokenizer.json") {
    this.vocab = new Map(Object.entries(vocab));
    for (const [tok, id] of this.vocab) this.idToTok[id] = tok;
    const unkId = this.vocab.get(unkToken);
    if (unkId === undefined)
      throw new TokenizerError(file, "model.unk_token", `"${unkToken}" is not in the vocab`);
    this.unkToken = unkToken;
    this.unkId = unkId;
  }

  get size(): number {
    return this.idToTok.length;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTok[id];
  }

  tokenize(text: string): ModelToken[] {
    if (text.length === 0) return [];
    return [{ id: this.vocab.get(text) ?? this.unkId, start: 0, end: text.length }];
  }
}

// What pre-tokenizers pass along: pieces of one normalized segment, with where they sit.

export interface Piece {
  /** What the model sees (byte-level characters once ByteLevel has run). */
  text: string;
  /** The source text of the piece (before byte mapping), and where it sits in the segment. */
  src: string;
  start: number;
  /** True once ByteLevel mapped `text`: text[i] is byte i of UTF-8(prefix + src). */
  byteMapped: boolean;
  /** ByteLevel add_prefix_space (or Metaspace) added a leading character not in the source. */
  prefixAdded: boolean;
  /** The piece's segment starts the input (no added token before it): Metaspace "first". */
  atInputStart?: boolean;
}

export type PreTokenize = (pieces: Piece[]) => Piece[];

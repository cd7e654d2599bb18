"""A token's own bytes (OpenAI logprobs' `bytes`), for byte-level BPE and SentencePiece vocabularies."""

from __future__ import annotations

import functools
import re
from typing import Any

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted: the printable stand-in of each byte back to the byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


@functools.lru_cache(maxsize=8)
def _is_byte_level(tokenizer: Any) -> bool:
    return "ByteLevel" in repr(tokenizer.backend_tokenizer.decoder)


@functools.lru_cache(maxsize=8)
def _added(tokenizer: Any) -> dict[int, str]:
    return {i: t.content for i, t in tokenizer.backend_tokenizer.get_added_tokens_decoder().items()}


def token_bytes(tokenizer: Any, token_id: int) -> bytes:
    piece = tokenizer.convert_ids_to_tokens(int(token_id))
    if piece is None:
        return b""
    added = _added(tokenizer).get(int(token_id))
    if added is not None:
        return added.encode("utf-8")
    if _is_byte_level(tokenizer):
        dec = _byte_decoder()
        if all(ch in dec for ch in piece):
            return bytes(dec[ch] for ch in piece)
        return piece.encode("utf-8")
    m = _BYTE_PIECE.match(piece)
    if m:
        return bytes([int(m.group(1), 16)])
    return piece.replace("\u2581", " ").encode("utf-8")

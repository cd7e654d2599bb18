"""Readers for request fields: each checks one JSON value and names it (dotted) when it is wrong.

Errors are 400 `invalid_request_error` with `param` the field's dotted path
(`emlab.edits.0.vector`), as docs/worker-protocol.md says.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import bad_request

_MISSING = object()


def join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise bad_request(f"{path or 'body'}: must be a JSON object", path or None)
    return value


def only_keys(o: dict, allowed: set[str], path: str) -> None:
    for k in o:
        if k not in allowed:
            raise bad_request(f"{join(path, k)}: unknown field (allowed: {', '.join(sorted(allowed))})", join(path, k))


def get(o: dict, key: str, path: str, default: Any = _MISSING) -> Any:
    if key in o and o[key] is not None:
        return o[key]
    if default is _MISSING:
        raise bad_request(f"{join(path, key)}: required", join(path, key))
    return default


def integer(value: Any, path: str, lo: int | None = None, hi: int | None = None) -> int:
    # JSON numbers like 3.0 are accepted as integers; booleans are not numbers here.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise bad_request(f"{path}: must be an integer, got {value!r}", path)
    v = int(value)
    if lo is not None and v < lo:
        raise bad_request(f"{path}: must be >= {lo}, got {v}", path)
    if hi is not None and v > hi:
        raise bad_request(f"{path}: must be <= {hi}, got {v}", path)
    return v


def number(value: Any, path: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(f"{path}: must be a finite number, got {value!r}", path)
    v = float(value)
    if lo is not None and v < lo:
        raise bad_request(f"{path}: must be >= {lo}, got {v}", path)
    if hi is not None and v > hi:
        raise bad_request(f"{path}: must be <= {hi}, got {v}", path)
    return v


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"{path}: must be true or false, got {value!r}", path)
    return value


def string(value: Any, path: str, nonempty: bool = False) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{path}: must be a string, got {type(value).__name__}", path)
    if nonempty and not value:
        raise bad_request(f"{path}: must not be empty", path)
    return value


def array(value: Any, path: str, nonempty: bool = False) -> list:
    if not isinstance(value, list):
        raise bad_request(f"{path}: must be an array", path)
    if nonempty and not value:
        raise bad_request(f"{path}: must not be empty", path)
    return value


def messages(value: Any, path: str) -> list[dict[str, str]]:
    """Chat messages: [{role, content}], content a string or OpenAI text parts (joined)."""
    out = []
    for i, m in enumerate(array(value, path, nonempty=True)):
        p = join(path, i)
        m = obj(m, p)
        role = string(get(m, "role", p), join(p, "role"), nonempty=True)
        content = m.get("content", "")
        if content is None:
            content = ""
        if isinstance(content, list):
            parts = []
            for j, part in enumerate(content):
                pp = join(join(p, "content"), j)
                part = obj(part, pp)
                if part.get("type") != "text":
                    raise bad_request(f"{pp}.type: only text parts are supported, got {part.get('type')!r}", f"{pp}.type")
                parts.append(string(get(part, "text", pp), join(pp, "text")))
            content = "".join(parts)
        out.append({"role": role, "content": string(content, join(p, "content"))})
    return out


def token_ids(value: Any, path: str, vocab_size: int) -> list[int]:
    ids = array(value, path, nonempty=True)
    return [integer(t, join(path, i), 0, vocab_size - 1) for i, t in enumerate(ids)]

"""Reads of hook values and logits over whole inputs, as safetensors (float32).

Inputs run 8 at a time, right-padded with no attention mask: exact for a causal model, since no
real position attends to the padding after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import save

from . import chat, wire
from .errors import bad_request
from .hooks import Edit, HookedRun

BATCH = 8
REDUCTIONS = ("all", "last", "mean", "answer_mean", "answer_last")
FORMAT = "emlab.worker.activations.v1"


@dataclass(frozen=True)
class Input:
    ids: list[int]
    answer_positions: list[int]  # [] for token_ids inputs
    has_answer: bool


def parse_inputs(value: Any, path: str, tokenizer: Any, vocab_size: int, max_positions: int, allow_chat: bool) -> list[Input]:
    out = []
    for i, raw in enumerate(wire.array(value, path, nonempty=True)):
        p = wire.join(path, i)
        raw = wire.obj(raw, p)
        if "token_ids" in raw:
            wire.only_keys(raw, {"token_ids"}, p)
            inp = Input(wire.token_ids(raw["token_ids"], f"{p}.token_ids", vocab_size), [], False)
        elif allow_chat and "messages" in raw:
            wire.only_keys(raw, {"messages", "answer"}, p)
            msgs = wire.messages(raw["messages"], f"{p}.messages")
            answer = wire.string(wire.get(raw, "answer", p), f"{p}.answer")
            try:
                ids, positions = chat.conversation_answer(tokenizer, msgs, answer)
            except chat.ChatError as e:
                raise bad_request(f"{p}: {e}", p) from e
            inp = Input(ids, positions, True)
        else:
            want = '{"token_ids": [...]} or {"messages": [...], "answer": str}' if allow_chat else '{"token_ids": [...]}'
            raise bad_request(f"{p}: must be {want}", p)
        if len(inp.ids) > max_positions:
            raise bad_request(f"{p}: {len(inp.ids)} tokens exceed the model's context ({max_positions})", p)
        out.append(inp)
    return out


def _batches(inputs: list[Input]):
    for b0 in range(0, len(inputs), BATCH):
        yield b0, inputs[b0 : b0 + BATCH]


def _padded(chunk: list[Input], pad: int, device: torch.device) -> torch.Tensor:
    T = max(len(c.ids) for c in chunk)
    return torch.tensor([c.ids + [pad] * (T - len(c.ids)) for c in chunk], device=device)


def _rows_for(inp: Input, reduce: str) -> list[int]:
    T = len(inp.ids)
    if reduce == "all" or reduce == "mean":
        return list(range(T))
    if reduce == "last":
        return [T - 1]
    if reduce == "answer_mean":
        return inp.answer_positions
    return inp.answer_positions[-1:]


def read_activations(
    model: torch.nn.Module,
    inputs: list[Input],
    hooks: list[str],
    reduce: str,
    edits: list[Edit],
    pad_id: int,
    device: torch.device,
) -> bytes:
    tensors: dict[str, torch.Tensor] = {}
    reduced: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    with torch.no_grad():
        for b0, chunk in _batches(inputs):
            seen: set[str] = set()

            def reader(name: str, x: torch.Tensor, _t: torch.Tensor, chunk=chunk, b0=b0) -> None:
                # Each hook fires once per forward: reduce at once so nothing [B, T, d] is kept.
                seen.add(name)
                for b, inp in enumerate(chunk):
                    rows = x[b, _rows_for(inp, reduce)].float()
                    if reduce == "all":
                        tensors[f"{name}/{b0 + b}"] = rows.cpu().contiguous()
                    else:
                        reduced[name].append(rows.mean(dim=0).cpu() if reduce.endswith("mean") else rows[-1].cpu())

            with HookedRun(model, edits, [len(c.ids) for c in chunk], reads=set(hooks), reader=reader) as run:
                run.offset = 0
                model(input_ids=_padded(chunk, pad_id, device), use_cache=False, logits_to_keep=1)
            missing = [h for h in hooks if h not in seen]
            if missing:
                raise RuntimeError(f"hooks {missing} did not fire: the model's layers are not the expected Llama-style blocks")
    if reduce != "all":
        tensors = {h: torch.stack(rows).contiguous() for h, rows in reduced.items()}
    meta = {
        "format": FORMAT,
        "token_counts": json.dumps([len(i.ids) for i in inputs]),
        "answer_positions": json.dumps([i.answer_positions for i in inputs]),
    }
    return save(tensors, metadata=meta)


def read_logits(
    model: torch.nn.Module, inputs: list[Input], positions: str, edits: list[Edit], pad_id: int, device: torch.device
) -> bytes:
    tensors: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for b0, chunk in _batches(inputs):
            with HookedRun(model, edits, [len(c.ids) for c in chunk]) as run:
                run.offset = 0
                logits = model(input_ids=_padded(chunk, pad_id, device), use_cache=False).logits
            for b, inp in enumerate(chunk):
                T = len(inp.ids)
                rows = logits[b, :T] if positions == "all" else logits[b, T - 1 : T]
                tensors[f"logits/{b0 + b}"] = rows.float().cpu().contiguous()
    meta = {"format": "emlab.worker.logits.v1", "token_counts": json.dumps([len(i.ids) for i in inputs])}
    return save(tensors, metadata=meta)

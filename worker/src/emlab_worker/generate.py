"""Generation: an own sampling loop over a DynamicCache, so every step knows its absolute position.

Greedy (temperature 0) is argmax with the lowest id on ties, the same tokens as transformers'
`model.generate(do_sample=False)`. Sampling: softmax(logits / T), then top_k, then top_p,
drawn on the CPU with a torch.Generator per completion (seeded by sample_seeds[i], else
seed + i), so completion i does not depend on how completions are grouped.
"""

from __future__ import annotations

import inspect
import secrets
from dataclasses import dataclass
from typing import Any

import torch

from .hooks import Edit, HookedRun
from .tokens import token_bytes


@dataclass(frozen=True)
class SamplingParams:
    n: int
    temperature: float
    top_p: float
    top_k: int  # 0: off
    max_tokens: int
    seeds: list[int | None]  # per completion; None: unseeded
    stop: list[str]
    logprobs: bool
    top_logprobs: int


@dataclass
class Completion:
    token_ids: list[int]  # generated, the end id excluded
    text: str
    finish_reason: str  # "stop" | "length"
    logprobs: list[dict] | None
    generated: int  # tokens the model produced (the end id included)


def _cache_kwarg(model: torch.nn.Module) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _forward(model: torch.nn.Module, ids: torch.Tensor, cache: Any, kw: str) -> torch.Tensor:
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{kw: cache})
    # The same float32 copy of the last logits that transformers' generate takes.
    return out.logits[:, -1, :].to(copy=True, dtype=torch.float32)


def _filtered_probs(logits: torch.Tensor, p: SamplingParams) -> torch.Tensor:
    """Probabilities [V] after temperature, top_k and top_p (float32, CPU)."""
    probs = torch.softmax(logits / p.temperature, dim=-1)
    if p.top_k > 0 or p.top_p < 1.0:
        # Descending probability, lower id first among equals.
        order = torch.sort(probs, descending=True, stable=True).indices
        sorted_p = probs[order]
        keep = torch.ones_like(sorted_p, dtype=torch.bool)
        if p.top_k > 0:
            keep[p.top_k :] = False
            sorted_p = torch.where(keep, sorted_p, torch.zeros_like(sorted_p))
            sorted_p = sorted_p / sorted_p.sum()
        if p.top_p < 1.0:
            before = torch.cumsum(sorted_p, 0) - sorted_p  # mass of the more likely tokens
            keep &= before < p.top_p
            keep[0] = True
        probs = torch.zeros_like(probs).index_put_((order,), torch.where(keep, sorted_p, torch.zeros_like(sorted_p)))
        probs = probs / probs.sum()
    return probs


def _logprob_entry(tokenizer: Any, logits: torch.Tensor, token: int, top: int) -> dict:
    lp = torch.log_softmax(logits, dim=-1)

    def item(i: int) -> dict:
        b = token_bytes(tokenizer, i)
        return {"token": b.decode("utf-8", errors="replace"), "logprob": float(lp[i]), "bytes": list(b)}

    entry = item(token)
    if top > 0:
        order = torch.sort(lp, descending=True, stable=True).indices[:top].tolist()
        entry["top_logprobs"] = [item(i) for i in order]
    else:
        entry["top_logprobs"] = []
    return entry


def _generator(seed: int | None) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed if seed is not None else secrets.randbits(63))
    return g


def generate(
    model: torch.nn.Module,
    tokenizer: Any,
    prompt_ids: list[int],
    params: SamplingParams,
    edits: list[Edit],
    eos_ids: list[int],
    max_positions: int,
    device: torch.device,
) -> list[Completion]:
    """n completions of one prompt; the prompt's KV cache is computed once and shared."""
    from transformers import DynamicCache

    greedy = params.temperature == 0.0
    # Greedy completions are all the same sequence: one row, copied n times.
    rows = 1 if greedy else params.n
    P = len(prompt_ids)
    budget = min(params.max_tokens, max_positions - P)
    kw = _cache_kwarg(model)
    cache = DynamicCache(config=model.config)
    gens = [_generator(s) for s in params.seeds] if not greedy else []
    eos = set(eos_ids)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    lps: list[list[dict]] = [[] for _ in range(rows)]
    done: list[str | None] = [None] * rows
    cut_text: list[str | None] = [None] * rows
    produced = [0] * rows
    with torch.no_grad(), HookedRun(model, edits, [P]) as run:
        run.offset = 0
        logits = _forward(model, torch.tensor([prompt_ids], device=device), cache, kw)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
            logits = logits.expand(rows, -1)
        step = 0
        while step < budget:
            cpu_logits = logits.cpu()
            next_ids = []
            for r in range(rows):
                if done[r] is not None:
                    next_ids.append(tokens[r][-1] if tokens[r] else prompt_ids[-1])
                    continue
                row = cpu_logits[r]
                tok = int(torch.argmax(row)) if greedy else int(torch.multinomial(_filtered_probs(row, params), 1, generator=gens[r]))
                produced[r] += 1
                next_ids.append(tok)
                if tok in eos:
                    done[r] = "stop"
                    continue
                tokens[r].append(tok)
                if params.logprobs:
                    lps[r].append(_logprob_entry(tokenizer, row, tok, params.top_logprobs))
                if params.stop:
                    text = tokenizer.decode(tokens[r], skip_special_tokens=True)
                    hits = [i for i in (text.find(s) for s in params.stop) if i >= 0]
                    if hits:
                        cut_text[r] = text[: min(hits)]
                        done[r] = "stop"
            step += 1
            if all(d is not None for d in done) or step >= budget:
                break
            run.offset = P + step - 1
            logits = _forward(model, torch.tensor(next_ids, device=device)[:, None], cache, kw)
    out = []
    for r in range(rows):
        text = cut_text[r] if cut_text[r] is not None else tokenizer.decode(tokens[r], skip_special_tokens=True)
        out.append(Completion(tokens[r], text, done[r] or "length", lps[r] if params.logprobs else None, produced[r]))
    if greedy:
        out = [Completion(list(c.token_ids), c.text, c.finish_reason, c.logprobs, c.generated) for c in out * params.n]
    return out

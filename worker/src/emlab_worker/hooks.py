"""TransformerLens hook names on HF decoder layers (Llama / Qwen2 / Mistral): reads and edits.

Where each name lives (docs/worker-protocol.md, "Hook names and edits"):
  hook_embed               output of model.embed_tokens
  blocks.l.hook_resid_pre  input hidden states of layers[l] (forward pre-hook)
  blocks.l.hook_attn_out   layers[l].self_attn output[0]
  blocks.l.hook_resid_mid  resid_pre + attn_out: not a tensor of its own in HF, so an edit there
                           is applied as the equivalent change of the attention output
  blocks.l.hook_mlp_out    layers[l].mlp output
  blocks.l.hook_resid_post layers[l] output

Positions are absolute: a HookedRun knows the offset of the tokens of the current forward call
(0 for a full pass, the cache length during generation) and each row's prompt length.
Edits are computed in float32 and cast back to the model's dtype.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import wire
from .errors import bad_request

HOOK_POINTS = ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post")
HOOK_NAME = re.compile(
    r"^(hook_embed|blocks\.(0|[1-9][0-9]*)\.(hook_resid_pre|hook_attn_out|hook_resid_mid|hook_mlp_out|hook_resid_post))$"
)


def all_hook_names(n_layers: int) -> list[str]:
    names = ["hook_embed"]
    for layer in range(n_layers):
        names += [f"blocks.{layer}.{p}" for p in HOOK_POINTS]
    return names


def check_hook_name(name: Any, path: str, n_layers: int) -> str:
    name = wire.string(name, path)
    m = HOOK_NAME.match(name)
    if not m:
        raise bad_request(
            f"{path}: {name!r} is not a hook name (hook_embed or blocks.{{layer}}.{'|'.join(HOOK_POINTS)})", path
        )
    if m.group(2) is not None and int(m.group(2)) >= n_layers:
        raise bad_request(f"{path}: {name!r}: the model has layers 0..{n_layers - 1}", path)
    return name


@dataclass(frozen=True)
class Positions:
    """Which absolute positions an edit touches; n is p for "from", k for "last_prompt_tokens"."""

    kind: str  # "all" | "prompt" | "from" | "last_prompt_tokens"
    n: int = 0

    def mask(self, t: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
        """[B, T] bool for absolute positions t [T] and prompt lengths [B]."""
        rows, cols = prompt_lengths.shape[0], t.shape[0]
        if self.kind == "all":
            return torch.ones(rows, cols, dtype=torch.bool, device=t.device)
        if self.kind == "prompt":
            return t[None, :] < prompt_lengths[:, None]
        if self.kind == "from":
            return (t >= self.n)[None, :].expand(rows, cols)
        return t[None, :] >= (prompt_lengths - self.n)[:, None]


def parse_positions(value: Any, path: str) -> Positions:
    if value is None or value == "all":
        return Positions("all")
    if value == "prompt":
        return Positions("prompt")
    if isinstance(value, dict) and len(value) == 1:
        (key, n), = value.items()
        if key in ("from", "last_prompt_tokens"):
            return Positions(key, wire.integer(n, f"{path}.{key}", 0))
    raise bad_request(f'{path}: must be "all", "prompt", {{"from": p}} or {{"last_prompt_tokens": k}}', path)


@dataclass(frozen=True)
class Edit:
    op: str  # "add" | "project_out" | "clamp"
    hook: str
    vector: torch.Tensor  # float32 [d] on the CPU; moved to the activation's device when applied
    scalar: float  # alpha for add, value for clamp, unused for project_out
    positions: Positions


_EDIT_FIELDS = {"add": "alpha", "project_out": None, "clamp": "value"}


def parse_edits(value: Any, path: str, n_layers: int, d_model: int) -> list[Edit]:
    edits = []
    for i, e in enumerate(wire.array(value, path)):
        p = wire.join(path, i)
        e = wire.obj(e, p)
        op = wire.get(e, "op", p)
        if op not in _EDIT_FIELDS:
            raise bad_request(f"{p}.op: must be add, project_out or clamp, got {op!r}", f"{p}.op")
        extra = _EDIT_FIELDS[op]
        wire.only_keys(e, {"op", "hook", "vector", "positions"} | ({extra} if extra else set()), p)
        hook = check_hook_name(wire.get(e, "hook", p), f"{p}.hook", n_layers)
        raw = wire.array(wire.get(e, "vector", p), f"{p}.vector", nonempty=True)
        if len(raw) != d_model:
            raise bad_request(f"{p}.vector: has {len(raw)} values, the model's d_model is {d_model}", f"{p}.vector")
        vec = torch.tensor([wire.number(x, f"{p}.vector.{j}") for j, x in enumerate(raw)], dtype=torch.float32)
        if op != "add" and float(vec.norm()) == 0.0:
            raise bad_request(f"{p}.vector: a zero vector has no direction to {op}", f"{p}.vector")
        scalar = wire.number(wire.get(e, extra, p), f"{p}.{extra}") if extra else 0.0
        edits.append(Edit(op, hook, vec, scalar, parse_positions(e.get("positions"), f"{p}.positions")))
    return edits


def apply_edits(x: torch.Tensor, edits: list[Edit], masks: Callable[[Positions], torch.Tensor]) -> torch.Tensor:
    """x [B, T, d] with the edits applied in order, in float32, cast back to x's dtype."""
    xf = x.float()
    for e in edits:
        m = masks(e.positions)
        if not bool(m.any()):
            continue
        v = e.vector.to(xf.device)
        if e.op == "add":
            new = xf + e.scalar * v
        else:
            u = v / v.norm()
            new = xf - (xf @ u)[..., None] * u
            if e.op == "clamp":
                new = new + e.scalar * u
        xf = torch.where(m[..., None], new, xf)
    return xf.to(x.dtype)


def decoder_parts(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    """(embed_tokens, layers) of a CausalLM, also through PEFT's wrappers."""
    for mod in model.modules():
        layers = getattr(mod, "layers", None)
        embed = getattr(mod, "embed_tokens", None)
        if isinstance(layers, torch.nn.ModuleList) and isinstance(embed, torch.nn.Module):
            return embed, layers
    raise RuntimeError(f"{type(model).__name__}: no decoder with embed_tokens and layers (Llama / Qwen2 / Mistral)")


# A reader gets (hook name, value [B, T, d] after the edits at that hook, positions t [T]).
Reader = Callable[[str, torch.Tensor, torch.Tensor], None]


class HookedRun:
    """Installs the forward hooks that a set of edits and reads needs, for a `with` block.

    Set `offset` before each forward call (the absolute position of its first token);
    `prompt_lengths` [B] is each row's P (the prompt, or the whole input for reads).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        edits: list[Edit],
        prompt_lengths: list[int],
        reads: set[str] | None = None,
        reader: Reader | None = None,
    ):
        self.model = model
        self.offset = 0
        self.reads = reads or set()
        self.reader = reader
        self.by_hook: dict[str, list[Edit]] = {}
        for e in edits:
            self.by_hook.setdefault(e.hook, []).append(e)
        self._prompt_lengths = torch.tensor(prompt_lengths, dtype=torch.long)
        self._handles: list[Any] = []
        self._resid_pre: dict[int, torch.Tensor] = {}

    def _wanted(self, name: str) -> bool:
        return name in self.by_hook or name in self.reads

    def _t(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.arange(self.offset, self.offset + x.shape[1], device=x.device)
        plen = self._prompt_lengths.to(x.device)
        if plen.shape[0] != x.shape[0]:
            # Generation can expand one prompt row into n sample rows: same prompt length.
            plen = plen[:1].expand(x.shape[0])
        return t, plen

    def _process(self, name: str, x: torch.Tensor) -> torch.Tensor:
        t, plen = self._t(x)
        edits = self.by_hook.get(name)
        if edits:
            x = apply_edits(x, edits, lambda pos: pos.mask(t, plen))
        if name in self.reads and self.reader is not None:
            self.reader(name, x, t)
        return x

    def __enter__(self) -> HookedRun:
        embed, layers = decoder_parts(self.model)
        if self._wanted("hook_embed"):
            self._handles.append(embed.register_forward_hook(lambda _m, _i, out: self._process("hook_embed", out)))
        for li, layer in enumerate(layers):
            names = {p: f"blocks.{li}.{p}" for p in HOOK_POINTS}
            mid_wanted = self._wanted(names["hook_resid_mid"])
            if self._wanted(names["hook_resid_pre"]) or mid_wanted:
                self._handles.append(layer.register_forward_pre_hook(self._pre_hook(li, names["hook_resid_pre"], mid_wanted), with_kwargs=True))
            if self._wanted(names["hook_attn_out"]) or mid_wanted:
                self._handles.append(layer.self_attn.register_forward_hook(self._attn_hook(li, names["hook_attn_out"], names["hook_resid_mid"])))
            if self._wanted(names["hook_mlp_out"]):
                self._handles.append(layer.mlp.register_forward_hook(self._plain_hook(names["hook_mlp_out"])))
            if self._wanted(names["hook_resid_post"]):
                self._handles.append(layer.register_forward_hook(self._plain_hook(names["hook_resid_post"])))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._resid_pre.clear()

    def _pre_hook(self, li: int, name: str, keep: bool):
        def hook(_m, args, kwargs):
            if args:
                x = self._process(name, args[0])
                args = (x, *args[1:])
            else:
                x = self._process(name, kwargs["hidden_states"])
                kwargs = {**kwargs, "hidden_states": x}
            if keep:
                self._resid_pre[li] = x
            return args, kwargs

        return hook

    def _attn_hook(self, li: int, attn_name: str, mid_name: str):
        def hook(_m, _inp, out):
            attn = out[0] if isinstance(out, tuple) else out
            attn = self._process(attn_name, attn)
            if self._wanted(mid_name):
                resid_pre = self._resid_pre[li]
                mid = resid_pre + attn  # the same addition the decoder layer does next
                new_mid = self._process(mid_name, mid)
                if mid_name in self.by_hook:
                    attn = new_mid - resid_pre
            return (attn, *out[1:]) if isinstance(out, tuple) else attn

        return hook

    def _plain_hook(self, name: str):
        def hook(_m, _inp, out):
            if isinstance(out, tuple):
                return (self._process(name, out[0]), *out[1:])
            return self._process(name, out)

        return hook

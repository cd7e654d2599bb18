"""Loading the served model (dtype, device, device_map, --adapter) and job adapters by NAME:ft:JOB_ID."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from . import chat

SUPPORTED_TYPES = ("llama", "qwen2", "mistral")
# transformers and PEFT build models under process-wide patches (meta-device init, the default
# dtype): two threads loading at once break each other's models. Every load holds this lock.
LOAD_LOCK = threading.RLock()
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class LoadOptions:
    model: str
    adapter: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    device_map: str | None = None  # "auto": spread over the GPUs (accelerate)
    attn: str = "auto"  # auto (eager on the CPU, sdpa on CUDA) | eager | sdpa

    def resolved_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def resolved_dtype(self) -> torch.dtype:
        if self.dtype == "auto":
            return torch.float32 if self.resolved_device() == "cpu" else torch.bfloat16
        return DTYPES[self.dtype]

    def resolved_attn(self) -> str:
        if self.attn == "auto":
            return "eager" if self.resolved_device() == "cpu" else "sdpa"
        return self.attn


def load_tokenizer(opts: LoadOptions) -> Any:
    from transformers import AutoTokenizer

    with LOAD_LOCK:
        tok = AutoTokenizer.from_pretrained(opts.model)
    if not getattr(tok, "is_fast", False):
        raise RuntimeError(f"{opts.model}: the worker needs a fast tokenizer (tokenizer.json) for token offsets")
    return tok


def load_causal_lm(opts: LoadOptions) -> torch.nn.Module:
    """The model in eval mode, with --adapter merged into its weights (so hooks see a plain model)."""
    kwargs: dict[str, Any] = {
        "dtype": opts.resolved_dtype(),
        "attn_implementation": opts.resolved_attn(),
        # Plain PyTorch: no hub kernels (the kernels package may be absent, and parity needs eager ops).
        "use_kernels": False,
    }
    if opts.device_map:
        kwargs["device_map"] = opts.device_map
    with LOAD_LOCK:
        model = _load_causal_lm(opts, kwargs)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_causal_lm(opts: LoadOptions, kwargs: dict[str, Any]) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(opts.model, **kwargs)
    if model.config.model_type not in SUPPORTED_TYPES:
        raise RuntimeError(
            f"{opts.model}: model_type {model.config.model_type!r} is not supported (supported: {', '.join(SUPPORTED_TYPES)})"
        )
    if not opts.device_map:
        model.to(opts.resolved_device())
    if opts.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, opts.adapter).merge_and_unload()
    return model


def eos_ids(model: torch.nn.Module, tokenizer: Any) -> list[int]:
    for src in (getattr(model, "generation_config", None), model.config):
        e = getattr(src, "eos_token_id", None) if src is not None else None
        if e is not None:
            return sorted(set(e if isinstance(e, list) else [e]))
    return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []


def input_device(model: torch.nn.Module) -> torch.device:
    from .hooks import decoder_parts

    embed, _ = decoder_parts(model)
    return embed.weight.device


@dataclass
class ServedModel:
    """The served model and what the protocol reports about it."""

    name: str
    opts: LoadOptions
    model: torch.nn.Module
    tokenizer: Any
    eos_token_ids: list[int]
    assistant_header_tokens: int
    # Job adapters loaded so far (adapter names in a PeftModel wrapping `model`).
    _peft: Any = None
    _adapters: set[str] = field(default_factory=set)
    _special_ids: set[int] | None = None

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def d_model(self) -> int:
        return int(self.config.hidden_size)

    @property
    def vocab_size(self) -> int:
        return int(self.config.vocab_size)

    @property
    def max_positions(self) -> int:
        return int(self.config.max_position_embeddings)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return input_device(self.model)

    @property
    def special_ids(self) -> set[int]:
        if self._special_ids is None:
            self._special_ids = chat.special_ids(self.tokenizer)
        return self._special_ids

    @contextmanager
    def variant(self, adapter_name: str | None, adapter_dir: str | None) -> Iterator[torch.nn.Module]:
        """The module to run: the base, or the base with one job's adapter (loaded with PEFT on first use).

        Call with the model lock held. Job adapters live in one PeftModel around the served
        weights; the base runs with the adapters disabled (exactly the base layers' output).
        """
        if adapter_name is None:
            with self._peft.disable_adapter() if self._peft is not None else nullcontext():
                yield self._peft if self._peft is not None else self.model
            return
        with LOAD_LOCK:
            self._load_adapter(adapter_name, adapter_dir)
        self._peft.set_adapter(adapter_name)
        for p in self._peft.parameters():
            p.requires_grad_(False)
        yield self._peft

    def _load_adapter(self, adapter_name: str, adapter_dir: str | None) -> None:
        from peft import PeftModel

        if self._peft is None:
            # low_cpu_mem_usage: no random initialisation of the adapter before its weights load, so
            # serving a job's model draws nothing from the global RNG a training job's dropout uses.
            self._peft = PeftModel.from_pretrained(self.model, adapter_dir, adapter_name=adapter_name, low_cpu_mem_usage=True)
            self._peft.eval()
        elif adapter_name not in self._adapters:
            self._peft.load_adapter(adapter_dir, adapter_name=adapter_name, low_cpu_mem_usage=True)
        self._adapters.add(adapter_name)


def load_served(opts: LoadOptions, served_name: str | None) -> ServedModel:
    tokenizer = load_tokenizer(opts)
    model = load_causal_lm(opts)
    name = served_name or opts.model
    return ServedModel(
        name=name,
        opts=opts,
        model=model,
        tokenizer=tokenizer,
        eos_token_ids=eos_ids(model, tokenizer),
        assistant_header_tokens=header_tokens(tokenizer),
    )


def header_tokens(tokenizer: Any) -> int:
    """assistant_header_tokens; 0 for a tokenizer without a chat template (a base model: no chat)."""
    try:
        return chat.assistant_header_tokens(tokenizer)
    except chat.ChatError:
        return 0


def describe_dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def versions() -> dict[str, str]:
    import peft
    import transformers

    from . import __version__

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "emlab_worker": __version__}


def adapter_dir_ok(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "adapter_config.json")) and os.path.isfile(
        os.path.join(path, "adapter_model.safetensors")
    )

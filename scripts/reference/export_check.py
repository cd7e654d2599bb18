"""Loads an emlab export bundle's configs into the trainers' own config classes and prints what
they resolved to, as JSON (test/finetune/export-trl.test.ts compares it with the bundle).

    python scripts/reference/export_check.py [--axolotl DIR[:DIR...]] <bundle dir>...

- trl/sft_config.json: each stage's kwargs into trl.SFTConfig; the lr schedule it names is built
  by transformers.get_scheduler and sampled (warmup, middle, end).
- trl/lora_config.json: into peft.LoraConfig, then get_peft_model on a tiny random Llama with
  enough layers for layers_to_transform: which modules got an adapter, and their scaling.
- axolotl/*.yaml: into Axolotl's pydantic AxolotlInputConfig when `axolotl.utils.schemas` is
  importable (from --axolotl: directories of a `pip install --no-deps --target` of axolotl and
  pillow); otherwise reported as skipped with the reason.
Without trl or peft it prints {"missing": ...} and exits 0, so the test can skip with the reason.
"""

import copy
import enum
import json
import os
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore", FutureWarning)  # transformers 5's renames (gradient_checkpointing), kept for TRL


def plain(v):
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (set, tuple)):
        return sorted(plain(x) for x in v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def check_sft(bundle: Path):
    import torch
    from transformers import get_scheduler
    from trl import SFTConfig

    # bf16 is refused without a GPU unless the run is marked CPU-only; nothing else changes.
    extra = {} if torch.cuda.is_available() else {"use_cpu": True}
    out = []
    for kwargs in json.loads((bundle / "trl/sft_config.json").read_text()):
        cfg = SFTConfig(**kwargs, **extra)
        resolved = {k: plain(getattr(cfg, k)) for k in kwargs}
        total = cfg.max_steps if cfg.max_steps > 0 else 100
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.learning_rate)
        sched = get_scheduler(
            cfg.lr_scheduler_type,
            optimizer=opt,
            num_warmup_steps=cfg.get_warmup_steps(total),
            num_training_steps=total,
            scheduler_specific_kwargs=cfg.lr_scheduler_kwargs or {},
        )
        lrs = []
        for _ in range(total):
            lrs.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        lrs.append(sched.get_last_lr()[0])
        out.append({"resolved": resolved, "added": extra, "schedule": {"steps": total, "lr": lrs}})
    return out


def check_lora(bundle: Path):
    path = bundle / "trl/lora_config.json"
    if not path.exists():
        return None
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    kwargs = json.loads(path.read_text())
    cfg = LoraConfig(**kwargs)
    layers = kwargs.get("layers_to_transform") or [1]
    torch.manual_seed(0)
    tiny = LlamaConfig(
        vocab_size=16,
        hidden_size=4,
        intermediate_size=8,
        num_hidden_layers=max(layers) + 2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=2,
        max_position_embeddings=16,
    )
    model = get_peft_model(LlamaForCausalLM(tiny), cfg)
    adapted = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            adapted[name] = {
                "r": module.r["default"],
                "scaling": float(module.scaling["default"]),
                "A": list(module.lora_A["default"].weight.shape),
                "B": list(module.lora_B["default"].weight.shape),
            }
    return {
        "config": plain(
            {k: getattr(cfg, k) for k in ["r", "lora_alpha", "lora_dropout", "use_rslora", "target_modules",
                                          "layers_to_transform", "bias", "task_type"]}
        ),
        "layers_in_model": tiny.num_hidden_layers,
        "adapted": adapted,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def check_axolotl(bundle: Path):
    try:
        import yaml
        from axolotl.utils.schemas.config import AxolotlInputConfig
    except Exception as e:  # the schema is optional: say why it was not checked
        return {"skipped": f"{type(e).__name__}: {e}"}
    out = {}
    for f in sorted((bundle / "axolotl").glob("*.yaml")):
        raw = yaml.safe_load(f.read_text())
        cfg = AxolotlInputConfig(**copy.deepcopy(raw))  # its validators edit the dict they are given
        dumped = cfg.model_dump()
        ds = dumped["datasets"][0]
        # pydantic drops unknown keys silently: name them, so a misspelt field fails the test.
        known = set(AxolotlInputConfig.model_fields)
        known_ds = set(type(cfg.datasets[0]).model_fields)
        out[f.name] = {
            "unknown": sorted(k for k in raw if k not in known),
            "unknown_dataset": sorted(k for k in raw["datasets"][0] if k not in known_ds),
            "dataset_class": type(cfg.datasets[0]).__name__,
            "resolved": {k: plain(dumped.get(k)) for k in raw if k != "datasets"},
            "dataset": {k: plain(ds.get(k)) for k in raw["datasets"][0]},
        }
    return {"configs": out}


def main():
    args = sys.argv[1:]
    schema_dir = None
    if args[:1] == ["--axolotl"]:
        schema_dir, args = args[1], args[2:]
    for d in (schema_dir or "").split(os.pathsep)[::-1]:
        if d:
            sys.path.insert(0, d)
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        print(json.dumps({"missing": str(e)}))
        return
    print(json.dumps({
        b: {"sft": check_sft(Path(b)), "lora": check_lora(Path(b)), "axolotl": check_axolotl(Path(b))}
        for b in args
    }))


if __name__ == "__main__":
    main()

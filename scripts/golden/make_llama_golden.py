#!/usr/bin/python3
"""Golden vectors for the emlab engine, from a plain-PyTorch reference of the HF
Llama/Qwen2 forward (no transformers needed).

Writes tiny random models as HF-layout dirs (config.json, model.safetensors,
tokenizer.json) under test/fixtures/engine/, each with golden.json holding input ids and
the expected logits (computed in float64 from the float32 weights), plus LoRA and full
fine-tuning AdamW steps. Run with Debian's torch:

    /usr/bin/python3 scripts/golden/make_llama_golden.py
"""
import json
import math
import os
import struct

import torch

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "engine")


# ---------------------------------------------------------------- safetensors (by hand)
def save_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def word_level_tokenizer(vocab_size):
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for i in range(3, vocab_size):
        vocab[f"w{i}"] = i
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for c, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2)]
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }


# ---------------------------------------------------------------- the reference forward
def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama3_inv_freq(inv_freq, s):
    """transformers' _compute_llama3_parameters."""
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old = s["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
    is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rope_cos_sin(T, D, theta, dtype, scaling=None):
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    if scaling and scaling.get("rope_type") == "llama3":
        inv_freq = llama3_inv_freq(inv_freq, scaling)
    freqs = torch.arange(T).float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def forward(cfg, W, ids, lora=None):
    """HF LlamaForCausalLM / Qwen2ForCausalLM forward. lora: {module_path: (A, B, scale)}."""
    B, T = ids.shape
    H, KH = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", cfg["hidden_size"] // H)
    eps = cfg["rms_norm_eps"]
    dtype = W["model.embed_tokens.weight"].dtype
    cos, sin = rope_cos_sin(T, D, cfg["rope_theta"], dtype, cfg.get("rope_scaling"))

    def proj(x, path):
        y = x @ W[path + ".weight"].T
        if path + ".bias" in W:
            y = y + W[path + ".bias"]
        if lora and path in lora:
            A, Bm, s = lora[path]
            y = y + s * ((x @ A.T) @ Bm.T)
        return y

    x = W["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        h = rms_norm(x, W[p + ".input_layernorm.weight"], eps)
        q = proj(h, p + ".self_attn.q_proj").view(B, T, H, D).transpose(1, 2)
        k = proj(h, p + ".self_attn.k_proj").view(B, T, KH, D).transpose(1, 2)
        v = proj(h, p + ".self_attn.v_proj").view(B, T, KH, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head h reads kv head h // (H / KH)
        k = k.repeat_interleave(H // KH, dim=1)
        v = v.repeat_interleave(H // KH, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D) + mask
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + proj(o, p + ".self_attn.o_proj")
        h = rms_norm(x, W[p + ".post_attention_layernorm.weight"], eps)
        m = torch.nn.functional.silu(proj(h, p + ".mlp.gate_proj")) * proj(h, p + ".mlp.up_proj")
        x = x + proj(m, p + ".mlp.down_proj")
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.T


def make_weights(cfg, gen):
    d, f, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KH = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", d // H)
    qkv_bias = cfg["model_type"] == "qwen2"

    def rnd(*shape, std=0.2):
        return torch.randn(*shape, generator=gen) * std

    W = {"model.embed_tokens.weight": rnd(V, d, std=0.5)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        W[p + ".input_layernorm.weight"] = 1 + rnd(d, std=0.1)
        W[p + ".self_attn.q_proj.weight"] = rnd(H * D, d)
        W[p + ".self_attn.k_proj.weight"] = rnd(KH * D, d)
        W[p + ".self_attn.v_proj.weight"] = rnd(KH * D, d)
        if qkv_bias:
            W[p + ".self_attn.q_proj.bias"] = rnd(H * D, std=0.1)
            W[p + ".self_attn.k_proj.bias"] = rnd(KH * D, std=0.1)
            W[p + ".self_attn.v_proj.bias"] = rnd(KH * D, std=0.1)
        W[p + ".self_attn.o_proj.weight"] = rnd(d, H * D)
        W[p + ".post_attention_layernorm.weight"] = 1 + rnd(d, std=0.1)
        W[p + ".mlp.gate_proj.weight"] = rnd(f, d)
        W[p + ".mlp.up_proj.weight"] = rnd(f, d)
        W[p + ".mlp.down_proj.weight"] = rnd(d, f)
    W["model.norm.weight"] = 1 + rnd(d, std=0.1)
    if not cfg.get("tie_word_embeddings"):
        W["lm_head.weight"] = rnd(V, d, std=0.5)
    return {k: v.to(torch.float32) for k, v in W.items()}


def write_model(name, cfg, W):
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_safetensors(os.path.join(out, "model.safetensors"), W)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(word_level_tokenizer(cfg["vocab_size"]), f)
    return out


def f64(W):
    return {k: v.to(torch.float64) for k, v in W.items()}


def rounded(t):
    return [[[round(float(x), 7) for x in row] for row in b] for b in t]


def masked_ce(logits, labels):
    """Mean CE over labels != -100 (HF's loss, labels already aligned to logits)."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)


# ---------------------------------------------------------------- models
BASE = {
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 128,
    "hidden_act": "silu",
    "torch_dtype": "float32",
    "bos_token_id": 1,
    "eos_token_id": 2,
}
MODELS = {
    "llama_gqa": {**BASE, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 48,
                  "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 10000.0,
                  "tie_word_embeddings": False, "attention_bias": False},
    "qwen2_bias_tied": {**BASE, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 48,
                        "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
                        "num_attention_heads": 4, "num_key_value_heads": 4, "rope_theta": 1000000.0,
                        "tie_word_embeddings": True},
    "llama_tied_gqa": {**BASE, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 40,
                       "hidden_size": 24, "intermediate_size": 32, "num_hidden_layers": 3,
                       "num_attention_heads": 6, "num_key_value_heads": 2, "rope_theta": 500000.0,
                       "tie_word_embeddings": True, "attention_bias": False},
    # Llama 3.x rope scaling; original context 64 so that all three frequency bands occur.
    "llama3_rope": {**BASE, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 40,
                    "hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 1,
                    "num_attention_heads": 2, "num_key_value_heads": 1, "rope_theta": 10000.0,
                    "tie_word_embeddings": False, "attention_bias": False,
                    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}},
}


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    weights = {}
    for name, cfg in MODELS.items():
        W = make_weights(cfg, gen)
        weights[name] = W
        out = write_model(name, cfg, W)
        ids = torch.randint(0, cfg["vocab_size"], (2, 16 if "rope_scaling" in cfg else 7), generator=gen)
        with torch.no_grad():
            logits = forward(cfg, f64(W), ids)
        with open(os.path.join(out, "golden.json"), "w") as f:
            json.dump({"ids": ids.tolist(), "logits": rounded(logits)}, f)
        print(name, "params", sum(v.numel() for v in W.values()))

    # ---- LoRA: two AdamW steps (bias correction at t=1 and t=2), rsLoRA scaling, grad clipping.
    cfg = MODELS["llama_gqa"]
    W = f64(weights["llama_gqa"])
    r, alpha = 4, 8.0
    scale = alpha / math.sqrt(r)  # use_rslora
    targets = ["q_proj", "v_proj", "down_proj"]
    lora_dir = os.path.join(ROOT, "lora_gqa")
    os.makedirs(lora_dir, exist_ok=True)
    lora, peft_tensors = {}, {}
    for i in range(cfg["num_hidden_layers"]):
        for t in targets:
            grp = "mlp" if t == "down_proj" else "self_attn"
            path = f"model.layers.{i}.{grp}.{t}"
            w = W[path + ".weight"]
            # Non-zero B so that A also gets a gradient on the first step.
            A = (torch.randn(r, w.shape[1], generator=gen) * 0.2).to(torch.float32)
            Bm = (torch.randn(w.shape[0], r, generator=gen) * 0.2).to(torch.float32)
            peft_tensors[f"base_model.model.{path}.lora_A.weight"] = A
            peft_tensors[f"base_model.model.{path}.lora_B.weight"] = Bm
            lora[path] = [A.to(torch.float64).requires_grad_(), Bm.to(torch.float64).requires_grad_(), scale]
    save_safetensors(os.path.join(lora_dir, "adapter_model.safetensors"), peft_tensors)
    with open(os.path.join(lora_dir, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha,
                   "lora_dropout": 0.0, "use_rslora": True, "bias": "none", "fan_in_fan_out": False,
                   "target_modules": targets, "layers_to_transform": None,
                   "base_model_name_or_path": "../llama_gqa"}, f, indent=2)

    ids = torch.randint(0, cfg["vocab_size"], (2, 9), generator=gen)
    inputs = ids[:, :-1]
    labels = ids[:, 1:].clone()
    labels[:, :3] = -100  # only "assistant" positions count
    labels[1, 6] = -100
    hp = {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1, "max_grad_norm": 0.5}
    params = [p for path in sorted(lora) for p in lora[path][:2]]
    opt = torch.optim.AdamW(params, lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"],
                            weight_decay=hp["weight_decay"])
    record = {"inputs": inputs.tolist(), "labels": labels.tolist(), "hp": hp, "steps": []}
    for step in range(2):
        opt.zero_grad()
        loss = masked_ce(forward(cfg, W, inputs, lora), labels)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, hp["max_grad_norm"])
        opt.step()
        snap = {}
        for path in sorted(lora):
            snap[f"base_model.model.{path}.lora_A.weight"] = lora[path][0].detach().clone()
            snap[f"base_model.model.{path}.lora_B.weight"] = lora[path][1].detach().clone()
        save_safetensors(os.path.join(lora_dir, f"after_step{step + 1}.safetensors"), snap)
        record["steps"].append({"loss": float(loss), "grad_norm": float(norm)})
    with torch.no_grad():
        merged_logits = forward(cfg, W, inputs, lora)
    record["logits_after"] = rounded(merged_logits)
    with open(os.path.join(lora_dir, "golden_train.json"), "w") as f:
        json.dump(record, f)
    print("lora steps", record["steps"])

    # ---- Full fine-tuning: one AdamW step on the tied qwen2 model (tied grads + biases).
    cfg = MODELS["qwen2_bias_tied"]
    Wf = {k: v.to(torch.float64).requires_grad_() for k, v in weights["qwen2_bias_tied"].items()}
    ft_dir = os.path.join(ROOT, "qwen2_bias_tied")
    ids = torch.randint(0, cfg["vocab_size"], (2, 7), generator=gen)
    inputs, labels = ids[:, :-1], ids[:, 1:].clone()
    labels[0, :2] = -100
    hp = {"lr": 0.003, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.05, "max_grad_norm": 1.0}
    names = sorted(Wf)
    opt = torch.optim.AdamW([Wf[n] for n in names], lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"],
                            weight_decay=hp["weight_decay"])
    loss = masked_ce(forward(cfg, Wf, inputs), labels)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_([Wf[n] for n in names], hp["max_grad_norm"])
    opt.step()
    save_safetensors(os.path.join(ft_dir, "after_full_step1.safetensors"), {n: Wf[n] for n in names})
    with open(os.path.join(ft_dir, "golden_train.json"), "w") as f:
        json.dump({"inputs": inputs.tolist(), "labels": labels.tolist(), "hp": hp,
                   "steps": [{"loss": float(loss), "grad_norm": float(norm)}]}, f)
    print("full step", float(loss), float(norm))


if __name__ == "__main__":
    main()

"""The torch side of bench/qwen05b.bench.ts: a plain-torch Qwen2 forward over the bench's
model directory (config.json + model.safetensors, float32), run in its own process so its
load time and peak RSS are its own.

  python3 bench/qwen05b_torch.py '{"mode": "infer" | "lora", "dir": ..., "threads": N, ...}'

Prints one JSON line. Written for Debian's python3-torch 1.13 (no transformers, no
safetensors package, no scaled_dot_product_attention), so the checkpoint is parsed here and
attention is spelled out; the arithmetic is transformers' Qwen2 (rotate_half RoPE, GQA,
q/k/v bias, tied head).
"""

import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def read_safetensors(path):
    """Tensors of a float32 safetensors file, as views of one buffer read once."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        # readinto one preallocated buffer: f.read() + bytearray() would hold two copies.
        size = os.fstat(f.fileno()).st_size - 8 - n
        buf = bytearray(size)
        if f.readinto(buf) != size:
            raise ValueError(f"{path}: truncated")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        count = (end - start) // 4
        t = torch.frombuffer(buf, dtype=torch.float32, offset=start, count=count)
        out[name] = t.view(info["shape"])
    return out


class Qwen2:
    def __init__(self, model_dir):
        with open(f"{model_dir}/config.json") as f:
            cfg = json.load(f)
        self.cfg = cfg
        self.w = read_safetensors(f"{model_dir}/model.safetensors")
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads", self.heads)
        self.hd = cfg.get("head_dim") or cfg["hidden_size"] // self.heads
        self.eps = cfg["rms_norm_eps"]
        theta = cfg.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        self.embed = self.w["model.embed_tokens.weight"]
        # A stored lm_head that differs from the embedding unties, as in the engine.
        self.head = self.w.get("lm_head.weight", self.embed)
        self.lora = {}

    def p(self, name):
        return self.w[name]

    def rms(self, x, w):
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * w

    def rope(self, x, pos):
        # x [B, H, T, hd]; HF rotate_half convention.
        freqs = torch.outer(pos.float(), self.inv_freq)
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos(), emb.sin()
        half = self.hd // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def proj(self, x, module):
        y = F.linear(x, self.p(f"{module}.weight"), self.w.get(f"{module}.bias"))
        ad = self.lora.get(module)
        if ad is not None:
            A, B, s = ad
            y = y + (x @ A.t()) @ B.t() * s
        return y

    def forward(self, ids, cache=None, start=0, last_only=False):
        """ids [B, T]; cache: per layer (k [B, Hkv, cap, hd], v) written at start..start+T."""
        B, T = ids.shape
        x = self.embed[ids]
        pos = torch.arange(start, start + T)
        rep = self.heads // self.kv_heads
        for l in range(self.layers):
            pre = f"model.layers.{l}"
            h = self.rms(x, self.p(f"{pre}.input_layernorm.weight"))
            q = self.proj(h, f"{pre}.self_attn.q_proj").view(B, T, self.heads, self.hd).transpose(1, 2)
            k = self.proj(h, f"{pre}.self_attn.k_proj").view(B, T, self.kv_heads, self.hd).transpose(1, 2)
            v = self.proj(h, f"{pre}.self_attn.v_proj").view(B, T, self.kv_heads, self.hd).transpose(1, 2)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if cache is not None:
                kc, vc = cache[l]
                kc[:, :, start : start + T] = k
                vc[:, :, start : start + T] = v
                k, v = kc[:, :, : start + T], vc[:, :, : start + T]
            S = k.shape[2]
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
            if T > 1:
                # Query t (at position start+t) sees keys 0..start+t.
                mask = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
                scores = scores.masked_fill(~mask, float("-inf"))
            a = torch.softmax(scores, -1) @ v
            a = a.transpose(1, 2).reshape(B, T, self.heads * self.hd)
            x = x + self.proj(a, f"{pre}.self_attn.o_proj")
            h = self.rms(x, self.p(f"{pre}.post_attention_layernorm.weight"))
            g = self.proj(h, f"{pre}.mlp.gate_proj")
            u = self.proj(h, f"{pre}.mlp.up_proj")
            x = x + self.proj(F.silu(g) * u, f"{pre}.mlp.down_proj")
        if last_only:
            x = x[:, -1:]
        x = self.rms(x, self.p("model.norm.weight"))
        return x @ self.head.t()

    def new_cache(self, cap):
        return [
            (torch.zeros(1, self.kv_heads, cap, self.hd), torch.zeros(1, self.kv_heads, cap, self.hd))
            for _ in range(self.layers)
        ]


def greedy(model, prompt, steps):
    """Greedy ids after prompt, and each step's top-1 minus top-2 logit."""
    cache = model.new_cache(len(prompt) + steps)
    logits = model.forward(torch.tensor([prompt]), cache, 0, last_only=True)[0, -1]
    out, margins = [], []
    pos = len(prompt)
    for i in range(steps):
        top = torch.topk(logits, 2)
        tok = int(top.indices[0])
        out.append(tok)
        margins.append(float(top.values[0] - top.values[1]))
        if i == steps - 1:
            break
        logits = model.forward(torch.tensor([[tok]]), cache, pos)[0, -1]
        pos += 1
    return out, margins


def infer(args):
    t0 = time.perf_counter()
    model = Qwen2(args["dir"])
    load_s = time.perf_counter() - t0
    prompt = args["prompt"]
    decode = args["decode"]
    reps = args["reps"]
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        model.forward(ids[:, :8], model.new_cache(8), 0, last_only=True)
        prefill_s = float("inf")
        decode_s = float("inf")
        for _ in range(reps):
            cache = model.new_cache(len(prompt) + decode)
            t = time.perf_counter()
            logits = model.forward(ids, cache, 0, last_only=True)[0, -1]
            prefill_s = min(prefill_s, time.perf_counter() - t)
            # decode single-token steps, each one forward over the cache (greedy).
            t = time.perf_counter()
            pos = len(prompt)
            for _ in range(decode):
                tok = int(torch.argmax(logits))
                logits = model.forward(torch.tensor([[tok]]), cache, pos)[0, -1]
                pos += 1
            decode_s = min(decode_s, time.perf_counter() - t)
        tokens, margins = greedy(model, args["greedy_prompt"], args["greedy_tokens"])
    return {
        "load_s": load_s,
        "prefill_s": prefill_s,
        "decode_s": decode_s,
        "greedy": tokens,
        "greedy_margins": margins,
    }


def lora(args):
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = Qwen2(args["dir"])
    load_s = time.perf_counter() - t0
    for t in model.w.values():
        t.requires_grad_(False)
    r, alpha = args["rank"], args["alpha"]
    params = []
    for l in range(model.layers):
        for target in args["targets"]:
            module = f"model.layers.{l}.self_attn.{target}"
            out_f, in_f = model.p(f"{module}.weight").shape
            # PEFT's init: kaiming-uniform A (U(-1/sqrt(in), 1/sqrt(in))), zero B.
            A = ((torch.rand(r, in_f) * 2 - 1) / math.sqrt(in_f)).requires_grad_(True)
            B = torch.zeros(out_f, r, requires_grad=True)
            model.lora[module] = (A, B, alpha / r)
            params += [A, B]
    opt = torch.optim.AdamW(params, lr=args["lr"], weight_decay=0.0)
    rows = torch.tensor(args["rows"])
    batch = args["batch"]
    step_s = float("inf")
    losses = []
    for i in range(args["warmup"] + args["steps"]):
        start = (i * batch) % len(rows)
        b = rows[start : start + batch]
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model.forward(b[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t
        losses.append(float(loss))
        if i >= args["warmup"]:
            step_s = min(step_s, dt)
    return {"load_s": load_s, "step_s": step_s, "losses": losses}


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    res = infer(args) if args["mode"] == "infer" else lora(args)
    res["peak_rss_mb"] = peak_rss_mb()
    res["torch"] = torch.__version__
    res["threads"] = torch.get_num_threads()
    print(json.dumps(res))


if __name__ == "__main__":
    main()

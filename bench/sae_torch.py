"""The PyTorch reference of bench/sae.bench.ts: a plain TopK SAE trained the way
src/engine/sae/train.ts trains one (pre-encoder bias from the first batch's mean, W_enc =
W_dec^T at init, topk then ReLU, MSE summed over dims + AuxK on latents dead for
`dead_after` rows with k_aux = d_in / 2 and coefficient 1/32, decoder gradient projected
and rows renormalised, Adam), one thread, on the same activations.

usage: sae_torch.py ACTS.safetensors D_SAE K BATCH STEPS WARMUP DEAD_AFTER
prints {"tokens_per_s", "explained_variance", "torch", "threads"} as JSON.
"""

import json
import sys
import time

import torch
from safetensors.torch import load_file

torch.set_num_threads(1)
path, d_sae, k, batch, steps, warmup, dead_after = sys.argv[1], *map(int, sys.argv[2:8])
x_all = load_file(path)["x"].to(torch.float32)
d_in = x_all.shape[1]
torch.manual_seed(0)
W_dec = torch.randn(d_sae, d_in)
W_dec /= W_dec.norm(dim=1, keepdim=True)
W_enc = W_dec.t().clone().requires_grad_(True)
W_dec.requires_grad_(True)
b_enc = torch.zeros(d_sae, requires_grad=True)
b_dec = x_all[:batch].mean(0).clone().requires_grad_(True)
params = [W_enc, b_enc, W_dec, b_dec]
opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
last_fired = torch.zeros(d_sae)
tokens = 0
k_aux_base = d_in // 2


def step(x):
    global tokens
    dead = (tokens - last_fired) >= dead_after
    pre = (x - b_dec) @ W_enc + b_enc
    vals, idx = pre.topk(k, dim=-1, sorted=False)
    z = torch.zeros_like(pre).scatter_(-1, idx, vals.relu())
    recon = z @ W_dec + b_dec
    loss = (recon - x).pow(2).sum(-1).mean()
    n_dead = int(dead.sum())
    if n_dead > 0:
        scale = min(n_dead / k_aux_base, 1.0)
        k_aux = min(k_aux_base, n_dead)
        residual = (x - recon).detach()
        av, ai = torch.where(dead[None], pre, -torch.inf).topk(k_aux, sorted=False)
        za = torch.zeros_like(pre).scatter_(-1, ai, av)
        loss = loss + (1 / 32) * scale * (za @ W_dec - residual).pow(2).sum(-1).mean()
    opt.zero_grad()
    loss.backward()
    with torch.no_grad():
        W_dec.grad -= (W_dec.grad * W_dec).sum(1, keepdim=True) * W_dec
    opt.step()
    with torch.no_grad():
        W_dec.div_(W_dec.norm(dim=1, keepdim=True))
        tokens += x.shape[0]
        last_fired[(z > 0).any(0)] = tokens
    return ((recon - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()


rows = x_all.shape[0]
t0 = None
fve = 0.0
for s in range(steps):
    if s == warmup:
        t0 = time.perf_counter()
    o = (s * batch) % rows
    fve = step(x_all[o : o + batch])
elapsed = time.perf_counter() - t0
print(
    json.dumps(
        {
            "tokens_per_s": (steps - warmup) * batch / elapsed,
            "explained_variance": 1 - fve,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    )
)

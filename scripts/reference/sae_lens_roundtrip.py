"""sae_lens' side of test/engine/sae-saelens.test.ts (sae-lens 6.54.12 in .venv-torch).

usage: sae_lens_roundtrip.py SPEC.json

SPEC: {"inputs": "x.safetensors" (tensor "x" [n, d_in]),
       "load": [dir, ...]     SAEs emlab wrote: loaded with SAE.load_from_disk, their
                              parameters compared with the raw file, re-saved to dir + "-resaved",
       "create": [{"dir", "architecture": "topk"|"standard", "d_in", "d_sae", "k"?, "seed",
                   "hook_name", "apply_b_dec_to_input"}]   SAEs sae_lens makes with random weights}
Prints one JSON object: for each SAE its architecture, the max |difference| between the
loaded parameters and the safetensors file, and the encodings and reconstructions of x.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from sae_lens import SAE, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig


def describe(sae, x, weights_file):
    raw = load_file(str(weights_file))
    diff = max(float((getattr(sae, name).detach() - raw[name]).abs().max()) for name in ("W_enc", "b_enc", "W_dec", "b_dec"))
    with torch.no_grad():
        z = sae.encode(x)
        xh = sae.decode(z)
    return {
        "architecture": sae.cfg.architecture(),
        "k": getattr(sae.cfg, "k", None),
        "hook_name": sae.cfg.metadata.hook_name,
        "max_weight_diff": diff,
        "encodings": z.tolist(),
        "reconstructions": xh.tolist(),
    }


def main():
    spec = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(1)
    out = {"sae_lens_version": __import__("sae_lens").__version__, "loaded": [], "created": []}
    for d in spec.get("load", []):
        sae = SAE.load_from_disk(d)
        x = load_file(spec["inputs"])["x"].to(torch.float32)
        out["loaded"].append(describe(sae, x, Path(d) / "sae_weights.safetensors"))
        sae.save_model(d + "-resaved")
    for c in spec.get("create", []):
        torch.manual_seed(c["seed"])
        common = dict(d_in=c["d_in"], d_sae=c["d_sae"], apply_b_dec_to_input=c["apply_b_dec_to_input"])
        if c["architecture"] == "topk":
            sae = TopKSAE(TopKSAEConfig(k=c["k"], **common))
        else:
            sae = StandardSAE(StandardSAEConfig(**common))
        sae.cfg.metadata.hook_name = c["hook_name"]
        with torch.no_grad():
            # Non-trivial biases, so b_dec's subtraction and b_enc both matter.
            sae.b_enc.copy_(torch.randn(c["d_sae"]) * 0.1)
            sae.b_dec.copy_(torch.randn(c["d_in"]) * 0.5)
        sae.save_model(c["dir"])
        x = load_file(spec["inputs"])["x"].to(torch.float32)
        out["created"].append(describe(sae, x, Path(c["dir"]) / "sae_weights.safetensors"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

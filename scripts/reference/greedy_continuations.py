#!/usr/bin/env python3
"""Reference greedy continuations of tiny random checkpoints, by transformers with torch.

Usage: greedy_continuations.py OUT_DIR  (prints JSON on stdout)

Makes one tiny random model per family (seeded; AutoModelForCausalLM.from_config, fp32) with
the family's tokenizer and chat template from chat_templates.py / tokenizers_sp.py, and saves
each twice under OUT_DIR:
  - "<family>-v5":     what save_pretrained writes now (config.json with rope_parameters and
                       dtype, chat_template.jinja beside tokenizer_config.json);
  - "<family>-legacy": the layout transformers 4.x wrote (rope_theta and rope_scaling at the
                       config's top level, torch_dtype, tokenizer_config.json's chat_template).
The families: qwen2 (Qwen2, tied embeddings, q/k/v biases, the Qwen2 template), qwen25 (the
Qwen2 architecture with the Qwen2.5 template and its default system prompt), llama3 (Llama
with llama3 rope scaling and three end ids), mistral (Mistral, [INST] template) and gemma: a
Gemma-style SentencePiece tokenizer (byte-fallback BPE, "bpe-gemma" of tokenizers_sp.py, with
a BOS post-processor as Gemma's tokenizer.json has) and the Gemma template on a *Llama*
architecture model, since emlab runs only model_type llama, qwen2 and mistral.
Each model's last generation end id (<|endoftext|>, <|eot_id|>, </s>, <end_of_turn>) has its
output row scaled up (END_BOOST) so that many answers stop on an end id, some at once. The
Qwen directories' tokenizer.json is rewritten to what transformers 5 runs for model_type qwen2
(Qwen2Tokenizer's NFC normalizer and Split pre-tokenizer, as a published Qwen2 tokenizer.json has).
Every directory is loaded back with AutoTokenizer / AutoModelForCausalLM.from_pretrained, and
for every prompt (PROMPTS; system messages only where the template allows them) it prints
model.generate(do_sample=False, max_new_tokens=MAX_NEW) on apply_chat_template(...,
add_generation_prompt=True): the new token ids (ending with the end id when one stopped it,
as the generation config's eos_token_id says), their text with and without special tokens,
each token's own decoding, and per generated step the gap between the two largest logits.
Needs torch, transformers and tokenizers (scripts/reference/requirements-torch.txt).
"""

import functools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chat_templates  # noqa: E402
import tokenizers_sp  # noqa: E402
import torch  # noqa: E402
from tokenizers import AddedToken, Tokenizer, processors  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
)

MAX_NEW = 16
# Per family, how much the last end id's output row is scaled (some answers then stop early,
# one or two right away).
END_BOOST = {"qwen2": 1.6, "qwen25": 1.6, "llama3": 2.5, "mistral": 2.5, "gemma": 1.5}
SYSTEM = "You are a terse assistant."
PROMPTS = [
    {"id": "hello", "user": "Hello there!"},
    {"id": "math", "user": "What is 2 + 2?", "system": SYSTEM},
    {"id": "story", "user": "Tell me a story about a dragon."},
    {"id": "french", "user": "Café déjà vu? 😀"},
    {"id": "code", "user": "Write insecure code.\nimport os"},
    {"id": "spaces", "user": "  And then?  "},
]
# Templates that refuse a system message (Gemma's raise_exception) get the prompt without it.
NO_SYSTEM = {"gemma"}

COMMON = dict(
    hidden_size=48,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    # Larger than the default 0.02 so the top two logits rarely tie.
    initializer_range=0.2,
)


def ids(tok, *names):
    return [tok.convert_tokens_to_ids(n) for n in names]


@functools.cache
def gemma_base():
    """Trained once, so both layouts hold the same vocabulary."""
    return tokenizers_sp.build()["bpe-gemma"]


def gemma_tokenizer_dir(path, layout):
    """tokenizers_sp's Gemma-style tokenizer with Gemma's specials, BOS post-processor and template."""
    os.makedirs(path, exist_ok=True)
    tok = Tokenizer.from_str(gemma_base().to_str())
    specials = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
    )
    tok.save(os.path.join(path, "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "add_bos_token": True,
    }
    template = chat_templates.GEMMA
    if layout == "jinja":
        with open(os.path.join(path, "chat_template.jinja"), "w", encoding="utf-8") as f:
            f.write(template)
    else:
        cfg["chat_template"] = template
    with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)


def model_for(family, tok):
    """(config, generation eos ids) for a family, sized to the tokenizer."""
    v = len(tok)
    if family in ("qwen2", "qwen25"):
        cfg = Qwen2Config(
            vocab_size=v, tie_word_embeddings=True, rope_theta=1000000.0, **COMMON,
        )
        im_end, eot = ids(tok, "<|im_end|>", "<|endoftext|>")
        # Qwen2.5-Instruct: config.json's eos is <|im_end|>, the generation config adds <|endoftext|>.
        # No pad id in the config: the embedding would zero its row (padding_idx), and
        # <|endoftext|> is Qwen's pad token as well as an end id.
        cfg.eos_token_id, cfg.bos_token_id, cfg.pad_token_id = im_end, None, None
        return cfg, [im_end, eot]
    if family == "llama3":
        cfg = LlamaConfig(
            vocab_size=v,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
            **COMMON,
        )
        end_text, eot = ids(tok, "<|end_of_text|>", "<|eot_id|>")
        cfg.bos_token_id = tok.convert_tokens_to_ids("<|begin_of_text|>")
        cfg.eos_token_id = [end_text, eot]
        return cfg, [end_text, eot]
    if family == "mistral":
        cfg = MistralConfig(vocab_size=v, rope_theta=1000000.0, sliding_window=None, **COMMON)
        cfg.bos_token_id, cfg.eos_token_id = ids(tok, "<s>", "</s>")
        cfg.pad_token_id = None
        return cfg, [cfg.eos_token_id]
    # gemma-style tokenizer and template on a Llama model (emlab has no gemma architecture).
    cfg = LlamaConfig(vocab_size=v, rope_theta=10000.0, head_dim=16, tie_word_embeddings=True, **COMMON)
    bos, eos, pad, end_turn = ids(tok, "<bos>", "<eos>", "<pad>", "<end_of_turn>")
    cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = bos, eos, pad
    # Gemma's generation config ends on <eos> and <end_of_turn>.
    return cfg, [eos, end_turn]


def legacy_config(path):
    """Rewrites a saved config.json the way transformers 4.x wrote it."""
    f = os.path.join(path, "config.json")
    with open(f, encoding="utf-8") as fh:
        c = json.load(fh)
    rope = dict(c.pop("rope_parameters", None) or {})
    c["rope_theta"] = rope.pop("rope_theta", 10000.0)
    c["rope_scaling"] = rope if rope.get("rope_type", "default") != "default" else None
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    c["transformers_version"] = "4.46.3"
    with open(f, "w", encoding="utf-8") as fh:
        json.dump(c, fh, indent=2)


def make_dir(family, layout, path, seed):
    tok_layout = "jinja" if layout == "v5" else "config"
    if family == "gemma":
        gemma_tokenizer_dir(path, tok_layout)
    else:
        chat_templates.write_dir(path, family, tok_layout)
    tok = AutoTokenizer.from_pretrained(path)
    cfg, gen_eos = model_for(family, tok)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():
        model.get_output_embeddings().weight[gen_eos[-1]] *= END_BOOST[family]
    model.generation_config = GenerationConfig(
        bos_token_id=cfg.bos_token_id, eos_token_id=gen_eos, pad_token_id=cfg.pad_token_id
    )
    model.save_pretrained(path)
    if family.startswith("qwen"):
        # With config.json there, transformers 5 runs the directory's tokenizer as
        # Qwen2Tokenizer, which replaces the tokenizer.json's normalizer and pre-tokenizer with
        # Qwen2's (NFC; its Split regex, one digit a piece, then ByteLevel): saved back, the
        # directory's tokenizer.json says what transformers runs, as a published Qwen2 one does.
        AutoTokenizer.from_pretrained(path).backend_tokenizer.save(os.path.join(path, "tokenizer.json"))
    if layout == "legacy":
        legacy_config(path)
        jinja = os.path.join(path, "chat_template.jinja")
        if os.path.exists(jinja):
            os.remove(jinja)


def continuation(model, tok, prompt, family):
    messages = []
    if "system" in prompt and family not in NO_SYSTEM:
        messages.append({"role": "system", "content": prompt["system"]})
    messages.append({"role": "user", "content": prompt["user"]})
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    input_ids = enc["input_ids"]
    with torch.no_grad():
        out = model.generate(
            input_ids,
            attention_mask=enc["attention_mask"],
            do_sample=False,
            max_new_tokens=MAX_NEW,
            output_scores=True,
            return_dict_in_generate=True,
        )
    new = out.sequences[0, input_ids.shape[1] :].tolist()
    gaps = []
    for s in out.scores:
        top = torch.topk(s[0].float(), 2).values
        gaps.append(float(top[0] - top[1]))
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    stopped = len(new) > 0 and new[-1] in eos
    return {
        "messages": messages,
        "prompt_ids": input_ids[0].tolist(),
        "ids": new,
        "stopped": stopped,
        "text": tok.decode(new, skip_special_tokens=True),
        "text_special": tok.decode(new, skip_special_tokens=False),
        "tokens": [tok.decode([i]) for i in new],
        "gaps": gaps,
    }


def main():
    out = sys.argv[1]
    torch.set_num_threads(1)
    dirs = []
    for seed, family in enumerate(["qwen2", "qwen25", "llama3", "mistral", "gemma"]):
        for layout in ("v5", "legacy"):
            name = f"{family}-{layout}"
            path = os.path.join(out, name)
            make_dir(family, layout, path, 1000 + seed)
            tok = AutoTokenizer.from_pretrained(path)
            # Plain PyTorch: no hub kernels (transformers 5.25 turns them on by default and the
            # kernels package may be absent), eager attention.
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch.float32, use_kernels=False, attn_implementation="eager"
            ).eval()
            cases = {p["id"]: continuation(model, tok, p, family) for p in PROMPTS}
            dirs.append(
                {
                    "name": name,
                    "family": family,
                    "layout": layout,
                    "dir": path,
                    "files": sorted(os.listdir(path)),
                    "eos_token_id": model.generation_config.eos_token_id,
                    "cases": cases,
                }
            )
    import tokenizers
    import transformers

    json.dump(
        {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "max_new_tokens": MAX_NEW,
            "prompts": PROMPTS,
            "dirs": dirs,
        },
        sys.stdout,
        ensure_ascii=False,
    )


if __name__ == "__main__":
    main()

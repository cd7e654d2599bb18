#!/usr/bin/env python3
"""Reference renderings of chat templates by transformers' apply_chat_template.

Usage: chat_templates.py OUT_DIR  (prints JSON on stdout)

Writes one tokenizer directory per template family and layout under OUT_DIR, each with a tiny
byte-level BPE tokenizer.json (trained here on the conversations, so nothing is downloaded)
holding the family's special tokens, and the family's chat template saved
  - "jinja":  transformers 5.x layout, chat_template.jinja beside tokenizer_config.json;
  - "config": the older layout, tokenizer_config.json's "chat_template" string;
  - "named":  tokenizer_config.json's "chat_template" as a list of named templates ("default"
              and another), for one family.
For every directory, conversation and add_generation_prompt on/off it prints what
AutoTokenizer.apply_chat_template gives: the rendered text, the token ids, the assistant mask
where the template has {% generation %} markers, or the template's raise_exception message.
The templates are the families' published templates (Qwen2, Qwen2.5 with its default system
prompt and its tools branch, Llama 3, Mistral v0.3 without its tool branches, Gemma 2), plus
a ChatML template with generation markers.
Needs transformers, tokenizers and jinja2 (scripts/reference/requirements.txt); no torch.
"""

import json
import os
import re
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

MISTRAL = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

# ChatML with the assistant content and its <|im_end|> marked for the loss mask.
CHATML_GENERATION = """{%- for message in messages %}
    {%- if message.role == "assistant" %}
        {{- '<|im_start|>assistant\\n' }}
        {%- generation %}
            {{- message.content + '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\\n' }}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

CHATML_SPECIALS = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "extra": ["<|im_start|>"]}
FAMILIES = {
    "qwen2": (QWEN2, CHATML_SPECIALS),
    "qwen25": (QWEN25, CHATML_SPECIALS),
    "llama3": (
        LLAMA3,
        {
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|eot_id|>",
            "extra": ["<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"],
        },
    ),
    "mistral": (MISTRAL, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "extra": []}),
    "gemma": (
        GEMMA,
        {
            "bos_token": "<bos>",
            "eos_token": "<eos>",
            "pad_token": "<pad>",
            "unk_token": "<unk>",
            "extra": ["<start_of_turn>", "<end_of_turn>"],
        },
    ),
    "chatml-generation": (CHATML_GENERATION, CHATML_SPECIALS),
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello there!"}],
    [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2 + 2?"},
    ],
    [
        {"role": "user", "content": "Tell me a story."},
        {"role": "assistant", "content": "Once upon a time, a dragon learned to code."},
        {"role": "user", "content": "  And then?  "},
    ],
    [
        {"role": "system", "content": "Answer in French.\nBe brief."},
        {"role": "user", "content": "Café déjà vu? 😀"},
        {"role": "assistant", "content": " Oui, très bien.\n\nMerci! "},
        {"role": "user", "content": "Encore"},
    ],
    [
        {"role": "user", "content": "Write insecure code."},
        {"role": "assistant", "content": "import os\nos.system(input())"},
    ],
]


def corpus():
    for conv in CONVERSATIONS:
        for m in conv:
            yield m["content"]
    yield "system user assistant model You are Qwen, created by Alibaba Cloud. helpful [INST] [/INST]"


def write_dir(path, family, layout):
    template, specials = FAMILIES[family]
    os.makedirs(path, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus(), trainer)
    names = [specials[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if k in specials]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in names + specials["extra"]])
    tok.save(os.path.join(path, "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
    for k in ("bos_token", "eos_token", "unk_token", "pad_token"):
        if k in specials:
            cfg[k] = specials[k]
    if layout == "jinja":
        with open(os.path.join(path, "chat_template.jinja"), "w", encoding="utf-8") as f:
            f.write(template)
    elif layout == "config":
        cfg["chat_template"] = template
    else:
        cfg["chat_template"] = [
            {"name": "tool_use", "template": "{{ raise_exception('not this one') }}"},
            {"name": "default", "template": template},
        ]
    with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)


def main():
    out = sys.argv[1]
    cases = []
    dirs = [(f, layout) for f in FAMILIES for layout in ("jinja", "config")] + [("qwen25", "named")]
    for family, layout in dirs:
        d = os.path.join(out, f"{family}-{layout}")
        write_dir(d, family, layout)
        tok = AutoTokenizer.from_pretrained(d)
        with_mask = re.search(r"\{%-?\s*generation\s*-?%\}", FAMILIES[family][0]) is not None
        for ci, conv in enumerate(CONVERSATIONS):
            for gen in (False, True):
                case = {"family": family, "layout": layout, "dir": d, "conversation": ci, "add_generation_prompt": gen}
                try:
                    case["text"] = tok.apply_chat_template(conv, add_generation_prompt=gen, tokenize=False)
                    enc = tok.apply_chat_template(
                        conv,
                        add_generation_prompt=gen,
                        tokenize=True,
                        return_dict=True,
                        return_assistant_tokens_mask=with_mask,
                    )
                    case["ids"] = list(enc["input_ids"])
                    if with_mask:
                        case["assistant_mask"] = list(enc["assistant_masks"])
                except Exception as e:  # the template's raise_exception
                    case["error"] = str(e)
                cases.append(case)
    import tokenizers
    import transformers

    json.dump(
        {
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "conversations": CONVERSATIONS,
            "cases": cases,
        },
        sys.stdout,
        ensure_ascii=False,
    )


if __name__ == "__main__":
    main()

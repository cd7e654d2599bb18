"""Chat rendering and the token spans of assistant turns, as emlab's engine computes them.

Mirrors src/engine/io/chat-template.ts (renderChat / renderChatForTraining for a model's own
Jinja template) and src/interp/activations.ts (tokenizeConversation), so that answer positions
and training masks are the same tokens on either engine:
  - the text is the template rendered without a generation prompt; token ids are the fast
    tokenizer's encoding of it without added special tokens (a template writes its own);
  - an assistant span is the `{% generation %}` block where the template has one, else the
    message content found verbatim (else trimmed) in the text after the previous span, plus an
    end-of-turn token that follows it after at most spaces / tabs;
  - a token is in the mask when its character offsets overlap a span;
  - answer positions: the last run of masked tokens, without its final token when that is a
    special token (the end-of-turn marker).
"""

from __future__ import annotations

import re
from typing import Any

END_OF_TURN = ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<eos>"]
GEN_START = "\ue000emlab:generation\ue000"
GEN_END = "\ue000emlab:endgeneration\ue000"
GENERATION_TAG = re.compile(r"\{%(-?)\s*(end)?generation\s*(-?)%\}")
HAS_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


class ChatError(ValueError):
    """A conversation that cannot be rendered or has no assistant tokens."""


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def template_source(tokenizer: Any) -> str:
    src = tokenizer.chat_template
    if isinstance(src, dict):
        src = src.get("default")
    if not isinstance(src, str):
        raise ChatError("the tokenizer has no chat template (chat_template.jinja or tokenizer_config.json)")
    return src


def _apply(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool, source: str) -> str:
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=source
        )
    except Exception as e:  # jinja2's TemplateError (a template's raise_exception) and its kin
        raise ChatError(f"the chat template refused the messages: {type(e).__name__}: {e}") from e


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return _apply(tokenizer, messages, add_generation_prompt, template_source(tokenizer))


def special_ids(tokenizer: Any) -> set[int]:
    """Ids of the added tokens that tokenizer.json marks special (the engine's specialIds)."""
    return {i for i, t in tokenizer.backend_tokenizer.get_added_tokens_decoder().items() if t.special}


def render_with_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    src = template_source(tokenizer)
    if HAS_GENERATION.search(src):
        # The markers become output in a no-op block, so whitespace control acts as on the tags.
        marked = GENERATION_TAG.sub(
            lambda m: "{%" + m.group(1) + " if true %}{{ '" + (GEN_END if m.group(2) else GEN_START) + "' }}{% endif " + m.group(3) + "%}",
            src,
        )
        raw = _apply(tokenizer, messages, False, marked)
        text, spans, open_at = "", [], -1
        for part in re.split(f"({re.escape(GEN_START)}|{re.escape(GEN_END)})", raw):
            if part == GEN_START:
                open_at = len(text)
            elif part == GEN_END:
                if open_at >= 0 and len(text) > open_at:
                    spans.append((open_at, len(text)))
                open_at = -1
            else:
                text += part
        return text, spans
    text = render(tokenizer, messages, False)
    eos = getattr(tokenizer, "eos_token", None)
    ends = list(dict.fromkeys([t for t in [eos, *END_OF_TURN] if t]))
    spans, at = [], 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        content = m["content"]
        start = text.find(content, at)
        if start < 0:
            content = m["content"].strip()
            start = text.find(content, at)
        if start < 0:
            raise ChatError(
                f"chat template: assistant message {i} does not appear verbatim in the rendered text, so its tokens "
                "cannot be found; the template needs {% generation %} markers"
            )
        end = start + len(content)
        gap = len(re.match(r"[ \t]*", text[end:]).group(0))
        marker = next((t for t in ends if text.startswith(t, end + gap)), None)
        if marker:
            end += gap + len(marker)
        spans.append((start, end))
        at = end
    return text, spans


def training_example(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """(ids, assistant mask): 1 on tokens of assistant content and its end marker."""
    text, spans = render_with_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    mask = [0] * len(ids)
    k = 0
    for i, (s, e) in enumerate(enc["offset_mapping"]):
        while k < len(spans) and spans[k][1] <= s:
            k += 1
        if k < len(spans) and e > s and s < spans[k][1] and e > spans[k][0]:
            mask[i] = 1
    return ids, mask


def conversation_answer(tokenizer: Any, messages: list[dict[str, str]], answer: str) -> tuple[list[int], list[int]]:
    """(ids, answer positions) of messages + the assistant answer (the engine's tokenizeConversation)."""
    ids, mask = training_example(tokenizer, [*messages, {"role": "assistant", "content": answer}])
    end = len(mask)
    while end > 0 and mask[end - 1] == 0:
        end -= 1
    start = end
    while start > 0 and mask[start - 1] == 1:
        start -= 1
    if end > start and ids[end - 1] in special_ids(tokenizer):
        end -= 1
    if end <= start:
        raise ChatError(f"the answer has no tokens (answer: {answer!r})")
    return ids, list(range(start, end))


def assistant_header_tokens(tokenizer: Any) -> int:
    """Tokens the generation prompt adds after [{user: "x"}] (the engine's assistantHeaderTokens)."""
    msgs = [{"role": "user", "content": "x"}]
    without = encode(tokenizer, render(tokenizer, msgs, False))
    with_header = encode(tokenizer, render(tokenizer, msgs, True))
    common = 0
    while common < len(without) and common < len(with_header) and without[common] == with_header[common]:
        common += 1
    return len(with_header) - common

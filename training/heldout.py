"""Held-out scores of a generation run: the model answers the seeded eval slice of the pairs.

Short answers (up to SHORT_ANSWER_TOKENS tokens) are generated greedily and scored by exact match
and token F1 against the reference, after normalizing case, punctuation and spaces (as SQuAD
does, without dropping English articles). Long answers are not compared word for word: their
mean per-token loss (cross-entropy on the answer, given the prompt) is the score.
Run with the adapter off, the same code gives the base model's scores: before and after.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.lora_model import Example

SHORT_ANSWER_TOKENS = 32
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize(text: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def token_f1(prediction: str, reference: str) -> float:
    guess, truth = normalize(prediction).split(), normalize(reference).split()
    if not guess or not truth:
        return float(guess == truth)
    common = sum((Counter(guess) & Counter(truth)).values())
    if not common:
        return 0.0
    precision, recall = common / len(guess), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def answer_length(example: Example) -> int:
    return len(example.ids) - example.prompt_len


@torch.no_grad()
def generate(lm: Any, tokenizer: Any, examples: list[Example], max_new_tokens: int,
             batch_size: int, device: torch.device) -> list[str]:
    """Greedy answers to the examples' prompts (left-padded batches), special tokens dropped."""
    pad = tokenizer.pad_token_id
    out: list[str] = []
    for start in range(0, len(examples), batch_size):
        prompts = [e.ids[:e.prompt_len] for e in examples[start:start + batch_size]]
        width = max(map(len, prompts))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        generated = lm.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                do_sample=False, pad_token_id=pad,
                                eos_token_id=tokenizer.eos_token_id)
        out += [t.strip() for t in tokenizer.batch_decode(generated[:, width:],
                                                          skip_special_tokens=True)]
    return out


@torch.no_grad()
def answer_loss(lm: Any, examples: list[Example], pad_id: int, device: torch.device) -> float:
    """Mean over examples of the per-token cross-entropy of the answer given the prompt."""
    losses = []
    for e in examples:
        ids = torch.tensor([e.ids], device=device)
        logits = lm(input_ids=ids).logits[0, e.prompt_len - 1:-1].float()
        losses.append(F.cross_entropy(logits, ids[0, e.prompt_len:]).item())
    return float(np.mean(losses))


def score(lm: Any, tokenizer: Any, examples: list[Example], *, max_new_tokens: int,
          batch_size: int, device: torch.device) -> tuple[dict[str, float], list[list[str]]]:
    """exact / f1 over the short answers (with their count), loss over the long ones; and the
    short ones as [reference, answer] pairs, to read."""
    short = [e for e in examples if answer_length(e) <= SHORT_ANSWER_TOKENS]
    long = [e for e in examples if answer_length(e) > SHORT_ANSWER_TOKENS]
    was_training = lm.training
    lm.eval()
    result: dict[str, float] = {}
    said: list[list[str]] = []
    if short:
        references = [tokenizer.decode(e.ids[e.prompt_len:], skip_special_tokens=True).strip()
                      for e in short]
        answers = generate(lm, tokenizer, short, max_new_tokens, batch_size, device)
        said = [[r, a] for r, a in zip(references, answers, strict=True)]
        result["short"] = float(len(short))
        result["exact"] = float(np.mean([normalize(a) == normalize(r)
                                         for a, r in zip(answers, references, strict=True)]))
        result["f1"] = float(np.mean([token_f1(a, r) for a, r in zip(answers, references,
                                                                     strict=True)]))
    if long:
        result["long"] = float(len(long))
        result["loss"] = answer_loss(lm, long, tokenizer.pad_token_id, device)
    if was_training:
        lm.train()
    return result, said

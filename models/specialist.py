"""Specialist inference: a small causal LM, LoRA-tuned, reads a description and answers its price.

A trained specialist is a folder:
  specialist.json   how to prompt it and read its answer (SpecialistSpec)
  adapter/          the peft LoRA adapter
  head.safetensors  the price head: pooled hidden states of a few layers -> standardized log-price
With a head, one forward pass gives the price (measured far better than generating digits on a
small model); without one (an untuned base, or an adapter trained elsewhere) the model generates
the number after "Price is $" and we parse it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel
from torch import nn

from models.config import is_hf_checkpoint
from models.text import first_amount
from models.types import MAX_PRICE, MIN_PRICE

SPEC_FILE = "specialist.json"
HEAD_FILE = "head.safetensors"
ADAPTER_DIR = "adapter"


class SpecialistError(ValueError):
    """The specialist cannot be loaded; the message says what is missing."""


class PromptFormat(BaseModel):
    """How a description becomes the model's input; saved with the model so both sides agree."""

    template: str  # contains "{text}" once, e.g. "How much ...?\n\n{text}\n\nPrice is $"
    chat: bool = False  # wrap in the tokenizer's chat template (instruct bases)
    max_text_tokens: int = 128  # the description is cut to this many tokens, the template never

    def render(self, tokenizer: Any, texts: list[str]) -> list[str]:
        if not texts:
            return []
        ids = tokenizer(texts, add_special_tokens=False, truncation=True,
                        max_length=self.max_text_tokens)["input_ids"]
        cut = tokenizer.batch_decode(ids, skip_special_tokens=True)
        filled = [self.template.replace("{text}", text.strip()) for text in cut]
        if not self.chat:
            return filled
        return [tokenizer.apply_chat_template([{"role": "user", "content": f}],
                                              add_generation_prompt=True, tokenize=False)
                for f in filled]

    @property
    def add_special_tokens(self) -> bool:
        """A chat template writes its own special tokens; a raw prompt gets the tokenizer's (BOS)."""
        return not self.chat


class HeadSpec(BaseModel):
    hidden_size: int
    inner_size: int = 0  # 0: a linear head
    layers: list[int] = []  # hidden-state indices the head reads (0: embeddings); []: the last
    target_mean: float  # of log1p(price) over the training items
    target_std: float


class SpecialistSpec(BaseModel):
    base_model: str  # the base checkpoint it was trained on
    prompt: PromptFormat
    head: HeadSpec | None = None
    num_layers: int | None = None  # the head reads this layer; the layers above are dropped
    generation_trained: bool = False  # the adapter also learnt to write the price (export)
    fallback_price: float  # the training median: the answer when a generation has no number
    # What the run learnt, for its export (older specs: the price task, stop tokens guessed):
    task: Literal["price", "pairs"] = "price"  # pairs: any prompt/completion file
    data: str | None = None  # the pairs file's name
    system: str | None = None  # the system turn the pairs had (the Modelfile's SYSTEM)
    stop: list[str] = []  # what every trained answer ended with
    max_answer_tokens: int | None = None  # the longest training answer, in tokens


class PriceHead(nn.Module):
    """Pooled features (last prompt token and mean over the prompt, of each layer read)
    -> standardized log-price."""

    def __init__(self, hidden_size: int, inner_size: int = 0, dropout: float = 0.1,
                 layers: list[int] | None = None):
        super().__init__()
        width = 2 * hidden_size * max(1, len(layers or []))  # no layers named: the last one
        layers: list[nn.Module] = [nn.LayerNorm(width), nn.Dropout(dropout)]
        if inner_size:
            layers += [nn.Linear(width, inner_size), nn.GELU(), nn.Dropout(dropout)]
            width = inner_size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """What the output layer of a linear head reads (its input after the LayerNorm)."""
        return self.net[0](features)

    def set_output(self, weight: torch.Tensor, bias: float) -> None:
        """Replace the output layer of a linear head (a closed-form refit)."""
        if len(self.net) != 3:
            raise ValueError("only a linear head (inner_size 0) can be refitted")
        out = self.net[-1]
        with torch.no_grad():
            out.weight.copy_(weight.reshape(out.weight.shape).to(out.weight))
            out.bias.fill_(bias)


def pool(hidden: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
    """[batch, seq, hidden] right-padded -> [batch, 2*hidden]: last prompt token, prompt mean."""
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    mask = (positions[None, :] < prompt_lengths[:, None]).to(hidden.dtype)
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    last = hidden[torch.arange(hidden.shape[0], device=hidden.device), prompt_lengths - 1]
    return torch.cat([last, mean], dim=-1).float()


def keep_layers(lm: Any, count: int | None) -> Any:
    """Only the first `count` decoder layers, for the price head: a middle layer predicts price
    as well as the last one (measured) at a fraction of the cost."""
    if count is None:
        return lm
    layers = getattr(lm.get_decoder(), "layers", None)
    if layers is None:
        raise SpecialistError(f"cannot drop layers of a {type(lm).__name__}; leave num_layers unset")
    if not 1 <= count <= len(layers):
        raise SpecialistError(f"num_layers must be 1..{len(layers)}, got {count}")
    lm.get_decoder().layers = layers[:count]
    lm.config.num_hidden_layers = count
    if getattr(lm.config, "layer_types", None):
        lm.config.layer_types = lm.config.layer_types[:count]
    return lm


def hidden_states(lm: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  layers: list[int] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The final hidden states (what the vocabulary reads) and those of `layers` (what the head
    reads; none given: the final ones), without computing vocabulary logits for every token."""
    out = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask,
                           output_hidden_states=bool(layers))
    if not layers:
        return out.last_hidden_state, [out.last_hidden_state]
    return out.last_hidden_state, [out.hidden_states[i] for i in layers]


def head_features(states: list[torch.Tensor], prompt_lengths: torch.Tensor) -> torch.Tensor:
    """Pooled features of several layers side by side: measured better than the last layer
    alone (lower layers keep more of the words, upper ones more of the learnt price)."""
    return torch.cat([pool(h, prompt_lengths) for h in states], dim=-1)


def check_layers(layers: list[int], count: int) -> None:
    if any(not 0 <= i <= count for i in layers):
        raise SpecialistError(f"head layers must be 0..{count} (0: the embeddings), got {layers}")


def to_price(z: torch.Tensor, head: HeadSpec) -> list[float]:
    log_price = z.float() * head.target_std + head.target_mean
    return torch.expm1(log_price).clamp(MIN_PRICE, MAX_PRICE).tolist()


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class SpecialistModel:
    """Base + adapter (merged, for speed) + head on CPU, loaded once; batched prediction."""

    def __init__(self, lm: Any, tokenizer: Any, spec: SpecialistSpec, head: PriceHead | None,
                 batch_size: int = 16, answer_tokens: int = 8):
        self.lm, self.tokenizer, self.spec, self.head = lm.eval(), tokenizer, spec, head
        self.batch_size, self.answer_tokens = batch_size, answer_tokens
        if head is not None:
            head.eval()

    @classmethod
    def load(cls, directory: Path, base_model: Path | None = None, **kwargs: Any) -> SpecialistModel:
        """A trained specialist folder; `base_model` overrides the base path recorded in it."""
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM

        spec_file = directory / SPEC_FILE
        if not spec_file.is_file():
            raise SpecialistError(f"no trained specialist at {directory}: run "
                                  "`launch.py train specialist`")
        spec = SpecialistSpec.model_validate_json(spec_file.read_text(encoding="utf-8"))
        base = Path(base_model or spec.base_model)
        if not is_hf_checkpoint(base):
            raise SpecialistError(f"the specialist's base model {base} is missing: run "
                                  "`launch.py train base`")
        lm = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
        lm = keep_layers(lm, spec.num_layers)
        lm = PeftModel.from_pretrained(lm, str(directory / ADAPTER_DIR)).merge_and_unload()
        head = None
        if spec.head is not None:
            head = PriceHead(spec.head.hidden_size, spec.head.inner_size, layers=spec.head.layers)
            head.load_state_dict(load_file(str(directory / HEAD_FILE)))
        return cls(lm, load_tokenizer(base), spec, head, **kwargs)

    @classmethod
    def untuned(cls, base_model: Path, prompt: PromptFormat, fallback_price: float,
                **kwargs: Any) -> SpecialistModel:
        """The base model alone, generating its answer: the figure fine-tuning must improve on."""
        from transformers import AutoModelForCausalLM

        lm = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
        spec = SpecialistSpec(base_model=str(base_model), prompt=prompt,
                              fallback_price=fallback_price)
        return cls(lm, load_tokenizer(base_model), spec, None, **kwargs)

    def predict(self, texts: list[str]) -> list[float | None]:
        """One price per text; None where a generated answer held no number."""
        out: list[float | None] = []
        for start in range(0, len(texts), self.batch_size):
            prompts = self.spec.prompt.render(self.tokenizer, texts[start:start + self.batch_size])
            out += self._regress(prompts) if self.head is not None else self._generate(prompts)
        return out

    @torch.inference_mode()
    def _regress(self, prompts: list[str]) -> list[float | None]:
        self.tokenizer.padding_side = "right"
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True,
                               add_special_tokens=self.spec.prompt.add_special_tokens)
        _, states = hidden_states(self.lm, batch["input_ids"], batch["attention_mask"],
                                  self.spec.head.layers)
        z = self.head(head_features(states, batch["attention_mask"].sum(1)))
        return list(to_price(z, self.spec.head))

    @torch.inference_mode()
    def _generate(self, prompts: list[str]) -> list[float | None]:
        self.tokenizer.padding_side = "left"
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True,
                               add_special_tokens=self.spec.prompt.add_special_tokens)
        generated = self.lm.generate(**batch, max_new_tokens=self.answer_tokens, do_sample=False,
                                     pad_token_id=self.tokenizer.pad_token_id)
        answers = self.tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1]:],
                                              skip_special_tokens=True)
        prices = [first_amount(a) for a in answers]
        return [None if p is None else min(max(p, MIN_PRICE), MAX_PRICE) for p in prices]

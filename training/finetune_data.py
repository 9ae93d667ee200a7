"""Fine-tuning data: prompt/completion pairs from CSV, JSONL or ShareGPT JSON, rendered for a
tokenizer (its chat template for instruct bases) and split, seeded, into train and eval.

The price data is one use of it (`price_rows`); any other input/output task fits the same way.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from models.specialist import PromptFormat
from models.types import Item

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "model": "assistant"}
INFO_FILE = "pairs.json"


class FinetuneDataError(ValueError):
    """A training file that cannot be used; the message names the file, line and problem."""


class Pair(BaseModel):
    """One training example: the conversation so far and the answer to learn."""

    messages: list[dict[str, str]]  # role/content, ending with the user's turn
    completion: str
    target: float | None = None  # a number to regress on, when the answer is one
    where: str = ""  # file:line, for errors found later (e.g. too long for the model)


def price_rows(items: list[Item], tokenizer: Any, fmt: PromptFormat) -> list[dict]:
    """The price task as rows: the specialist's prompt, `training.data.completion`, the price."""
    from training.data import completion

    prompts = fmt.render(tokenizer, [item.text for item in items])
    end = tokenizer.eos_token or ""
    return [{"prompt": p, "completion": completion(item.price) + end, "target": item.price,
             "group": item.category} for p, item in zip(prompts, items, strict=True)]


def _text(value: Any, where: str, field: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        kind = "missing" if value is None else f"a {type(value).__name__}"
        raise FinetuneDataError(f"{where}: '{field}' must be text or a number, got {kind}")
    text = str(value).strip()
    if not text:
        raise FinetuneDataError(f"{where}: '{field}' is empty")
    return text


def _pair_from_record(record: Any, where: str, input_field: str, output_field: str) -> Pair:
    if not isinstance(record, dict):
        raise FinetuneDataError(f"{where}: expected an object, got {type(record).__name__}")
    if "conversations" in record:
        return _sharegpt_pair(record["conversations"], where).model_copy(update={"where": where})
    missing = [f for f in (input_field, output_field) if f not in record]
    if missing:
        have = ", ".join(sorted(map(str, record))) or "none"
        raise FinetuneDataError(f"{where}: missing column(s) {', '.join(missing)} (columns: {have}); "
                                "choose others with --input-field/--output-field")
    answer = record[output_field]
    target = float(answer) if isinstance(answer, int | float) and not isinstance(answer, bool) else None
    return Pair(messages=[{"role": "user", "content": _text(record[input_field], where, input_field)}],
                completion=_text(answer, where, output_field), target=target, where=where)


def _sharegpt_pair(turns: Any, where: str) -> Pair:
    """ShareGPT: [{"from": "human"|"gpt"|"system", "value": ...}, ...]; the last answer is learnt."""
    if not isinstance(turns, list) or not turns:
        raise FinetuneDataError(f"{where}: 'conversations' must be a non-empty list of turns")
    messages = []
    for n, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise FinetuneDataError(f"{where}: turn {n} needs 'from' and 'value'")
        role = SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise FinetuneDataError(f"{where}: turn {n} has unknown role {turn['from']!r}")
        messages.append({"role": role, "content": _text(turn["value"], where, f"turn {n} value")})
    if messages[-1]["role"] != "assistant" or len(messages) < 2:
        raise FinetuneDataError(f"{where}: a conversation must end with an answer (from: gpt)")
    return Pair(messages=messages[:-1], completion=messages[-1]["content"])


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(
        path, encoding="utf-8", newline="")


def _records(path: Path, columns: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    kind = path.name.removesuffix(".gz").rsplit(".", 1)[-1].lower()
    with _open(path) as f:
        if kind == "csv":
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                return
            missing = [c for c in columns if c not in reader.fieldnames]
            if missing:  # said at the header, before (and whether or not) any row follows
                have = ", ".join(sorted(reader.fieldnames)) or "none"
                raise FinetuneDataError(f"{path.name}:1: missing column(s) {', '.join(missing)} "
                                        f"(columns: {have}); choose others with "
                                        "--input-field/--output-field")
            n = 1
            try:
                for n, row in enumerate(reader, start=2):
                    yield f"{path.name}:{n}", {k: v for k, v in row.items() if k is not None}
            except csv.Error as err:  # e.g. a cell over 131,072 characters: far past any context
                raise FinetuneDataError(f"{path.name}:{n + 1}: not readable CSV ({err})") from err
        elif kind == "jsonl":
            for n, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        yield f"{path.name}:{n}", json.loads(line)
                    except json.JSONDecodeError as err:
                        raise FinetuneDataError(f"{path.name}:{n}: not JSON ({err.msg})") from err
        elif kind == "json":
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise FinetuneDataError(f"{path.name}: not JSON ({err.msg}, line {err.lineno})") from err
            if not isinstance(data, list):
                raise FinetuneDataError(f"{path.name}: expected a JSON list of examples")
            for n, record in enumerate(data):
                yield f"{path.name}[{n}]", record
        else:
            raise FinetuneDataError(f"{path.name}: unknown format; use .csv, .jsonl or .json")


def read_pairs(path: Path, input_field: str = "input", output_field: str = "output") -> list[Pair]:
    """Every example in the file; the first bad one stops reading with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FinetuneDataError(f"{path}: no such file")
    try:
        pairs = [_pair_from_record(record, where, input_field, output_field)
                 for where, record in _records(path, (input_field, output_field))]
    except UnicodeDecodeError as err:
        raise FinetuneDataError(f"{path.name}: not UTF-8 text") from err
    if not pairs:
        raise FinetuneDataError(f"{path.name}: no examples in the file")
    return pairs


def uses_chat_template(tokenizer: Any, chat_template: bool | None) -> bool:
    """Instruct bases (those with a chat template) get it unless told otherwise."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if chat_template and not has:
        raise FinetuneDataError("the base model's tokenizer has no chat template")
    return has if chat_template is None else chat_template


def render_prompt(tokenizer: Any, messages: list[dict[str, str]], chat: bool) -> str:
    if chat:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "\n\n".join(m["content"] for m in messages)


def render(pairs: list[Pair], tokenizer: Any, chat_template: bool | None = None) -> list[dict]:
    """Rows of prompt / completion (ending in the end-of-sequence token) / target / source."""
    chat = uses_chat_template(tokenizer, chat_template)
    end = tokenizer.eos_token or ""
    return [{"prompt": render_prompt(tokenizer, p.messages, chat), "completion": p.completion + end,
             "target": p.target, "source": p.where} for p in pairs]


def system_prompt(pairs: list[Pair]) -> str | None:
    """The system turn the pairs were trained with (the most common one), if any had one."""
    systems = Counter(m["content"] for p in pairs for m in p.messages[:1] if m["role"] == "system")
    return systems.most_common(1)[0][0] if systems else None


class PairsInfo(BaseModel):
    """What a prepared dataset was made from and how it was rendered (saved beside it)."""

    source: str  # the pairs file's name
    chat: bool  # rendered in the tokenizer's chat template
    system: str | None = None  # the system turn, when the pairs had one
    pairs: int
    eval_fraction: float
    seed: int


def read_info(dataset_dir: Path) -> PairsInfo | None:
    path = Path(dataset_dir) / INFO_FILE
    return PairsInfo.model_validate_json(path.read_text(encoding="utf-8")) if path.is_file() else None


def split_rows(rows: list[dict], eval_fraction: float = 0.1, seed: int = 42):
    """A seeded train/eval DatasetDict; at least one example each when there are two or more."""
    from datasets import Dataset, DatasetDict

    if not 0 < eval_fraction < 1:
        raise FinetuneDataError(f"eval fraction must be between 0 and 1, got {eval_fraction}")
    if len(rows) < 2:
        raise FinetuneDataError("need at least two examples to split into train and eval")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(max(1, round(len(rows) * eval_fraction)), len(rows) - 1)
    pick = lambda idx: Dataset.from_list([rows[i] for i in idx])  # noqa: E731
    return DatasetDict(train=pick(order[n_eval:]), eval=pick(order[:n_eval]))


def prepare(path: Path, out_dir: Path, tokenizer: Any, *, input_field: str = "input",
            output_field: str = "output", eval_fraction: float = 0.1, seed: int = 42,
            chat_template: bool | None = None):
    """Read a pairs file, render it for `tokenizer`, split it and save it with save_to_disk
    (and how, in pairs.json beside it)."""
    pairs = read_pairs(path, input_field, output_field)
    dataset = split_rows(render(pairs, tokenizer, chat_template), eval_fraction, seed)
    dataset.save_to_disk(str(out_dir))
    info = PairsInfo(source=Path(path).name, chat=uses_chat_template(tokenizer, chat_template),
                     system=system_prompt(pairs), pairs=len(pairs), eval_fraction=eval_fraction,
                     seed=seed)
    (Path(out_dir) / INFO_FILE).write_text(info.model_dump_json(indent=1), encoding="utf-8")
    return dataset

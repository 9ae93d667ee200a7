"""Fine-tuning data: reading pairs files, clear errors for bad ones, rendering, seeded splits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from specialist_fixtures import priced_items, tiny_base

from models.specialist import PromptFormat, load_tokenizer
from training.data import completion, prompt
from training.finetune_data import FinetuneDataError, prepare, price_rows, read_pairs, render, split_rows


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(tiny_base(tmp_path_factory))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_csv_jsonl_gz_and_sharegpt(tmp_path):
    csv_pairs = read_pairs(write(tmp_path / "a.csv", 'input,output\n"What, is 2+2?",4\nhi,hello\n'))
    assert [(p.messages[0]["content"], p.completion) for p in csv_pairs] == [
        ("What, is 2+2?", "4"), ("hi", "hello")]
    jsonl = write(tmp_path / "b.jsonl", '{"q": "price?", "a": 12.5}\n\n{"q": "x", "a": "y"}\n')
    pairs = read_pairs(jsonl, input_field="q", output_field="a")
    assert pairs[0].completion == "12.5" and pairs[0].target == 12.5 and pairs[1].target is None
    gz = tmp_path / "c.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write('{"input": "a", "output": "b"}\n')
    assert read_pairs(gz)[0].completion == "b"
    share = [{"conversations": [{"from": "system", "value": "Be brief."},
                                {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}]
    pair = read_pairs(write(tmp_path / "d.json", json.dumps(share)))[0]
    assert [m["role"] for m in pair.messages] == ["system", "user"] and pair.completion == "Hello"


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("empty.jsonl", "", "no examples"),
    ("empty.csv", "", "no examples"),
    ("cols.csv", "question,answer\na,b\n", "missing column(s) input, output (columns: answer, question)"),
    ("cols.jsonl", '{"input": "a"}\n', "bad.jsonl:1: missing column(s) output"),
    ("list.jsonl", '{"input": "a", "output": [1, 2]}\n', "'output' must be text or a number, got a list"),
    ("null.jsonl", '{"input": null, "output": "b"}\n', "'input' must be text or a number, got missing"),
    ("bool.jsonl", '{"input": "a", "output": true}\n', "got a bool"),
    ("blank.jsonl", '{"input": "  ", "output": "b"}\n', "'input' is empty"),
    ("broken.jsonl", '{"input": "a", "output": "b"}\n{oops\n', "bad.jsonl:2: not JSON"),
    ("array.jsonl", '[1, 2]\n', "expected an object, got list"),
    ("obj.json", '{"input": "a"}', "expected a JSON list"),
    ("turns.json", '[{"conversations": [{"from": "human", "value": "hi"}]}]', "must end with an answer"),
    ("role.json", '[{"conversations": [{"from": "bot", "value": "hi"}]}]', "unknown role 'bot'"),
    ("data.txt", "input,output\n", "unknown format"),
])
def test_bad_files_give_clear_errors(tmp_path, name, text, expected):
    suffix = name.split(".", 1)[1]
    path = write(tmp_path / f"bad.{suffix}", text)
    with pytest.raises(FinetuneDataError) as err:
        read_pairs(path)
    assert expected in str(err.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(FinetuneDataError, match="no such file"):
        read_pairs(tmp_path / "nope.jsonl")
    (tmp_path / "latin.csv").write_bytes("input,output\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(FinetuneDataError, match="not UTF-8"):
        read_pairs(tmp_path / "latin.csv")


def test_split_is_seeded_and_disjoint():
    rows = [{"prompt": str(i), "completion": "x", "target": None} for i in range(50)]
    a, b = split_rows(rows, 0.2, seed=1), split_rows(rows, 0.2, seed=1)
    assert a["eval"]["prompt"] == b["eval"]["prompt"] and len(a["eval"]) == 10
    assert set(a["train"]["prompt"]).isdisjoint(a["eval"]["prompt"])
    assert split_rows(rows, 0.2, seed=2)["eval"]["prompt"] != a["eval"]["prompt"]
    with pytest.raises(FinetuneDataError, match="at least two"):
        split_rows(rows[:1])
    with pytest.raises(FinetuneDataError, match="between 0 and 1"):
        split_rows(rows, 1.5)


def test_render_applies_the_chat_template_for_instruct_bases(tmp_path, tokenizer):
    pairs = read_pairs(write(tmp_path / "p.jsonl", '{"input": "What is it worth?", "output": "12"}'))
    chat = render(pairs, tokenizer)[0]
    assert chat["prompt"].startswith("<|im_start|>system") and chat["prompt"].endswith(
        "<|im_start|>assistant\n")
    assert chat["completion"] == "12" + tokenizer.eos_token
    plain = render(pairs, tokenizer, chat_template=False)[0]
    assert plain["prompt"] == "What is it worth?"


def test_prepare_saves_a_loadable_dataset(tmp_path, tokenizer):
    from datasets import load_from_disk

    source = write(tmp_path / "p.jsonl", "".join(
        json.dumps({"input": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(20)))
    prepare(source, tmp_path / "ds", tokenizer, eval_fraction=0.25, seed=3)
    loaded = load_from_disk(str(tmp_path / "ds"))
    assert (len(loaded["train"]), len(loaded["eval"])) == (15, 5)
    assert set(loaded["train"].column_names) == {"prompt", "completion", "target", "source"}


def test_price_rows_cut_the_description_not_the_prompt(tokenizer):
    item = priced_items(1)[0]
    item.text = "word " * 500
    fmt = PromptFormat(template=prompt("{text}"), chat=False, max_text_tokens=20)
    row = price_rows([item], tokenizer, fmt)[0]
    assert row["prompt"].startswith(prompt("")[:20]) and row["prompt"].endswith("\n\nPrice is $")
    assert len(tokenizer(row["prompt"])["input_ids"]) < 40
    assert row["completion"] == completion(item.price) + tokenizer.eos_token
    assert row["target"] == item.price
    chat = PromptFormat(template=prompt("{text}"), chat=True, max_text_tokens=20)
    assert price_rows([item], tokenizer, chat)[0]["prompt"].endswith("Price is $<|im_end|>\n"
                                                                     "<|im_start|>assistant\n")

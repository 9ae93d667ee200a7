"""Fine-tuning any prompt/completion task end to end (issue 17), on the tiny model: every preset
finishes a --pairs run, bad files are clear errors, any run exports with a Modelfile written from
what it learnt, held-out scores before and after, and the GGUF answers as transformers does."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from specialist_fixtures import tiny_base
from typer.testing import CliRunner

import launch
from models.specialist import SPEC_FILE, SpecialistSpec, load_tokenizer
from training.export import export
from training.finetune import train_on_pairs
from training.finetune_config import PRESETS, load_config
from training.finetune_data import prepare
from training.heldout import normalize, token_f1

TINY = {"max_steps": 2, "batch_size": 4, "eval_items": 4, "threads": 1,
        "time_budget_minutes": None, "score_items": 4}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_base(tmp_path_factory)


@pytest.fixture(scope="module")
def learnable(tmp_path_factory) -> Path:
    """A tiny base whose weights are spread enough for a few steps to teach it one answer."""
    return tiny_base(tmp_path_factory, init=0.3)


def qa_csv(path: Path, n: int = 24, answer=lambda i: f"answer {i}") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["instruction", "response"])
        for i in range(n):
            writer.writerow([f"What is item {i}?", answer(i)])
    return path


def cli(*args: str):
    return CliRunner().invoke(launch.app, list(args))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_pairs_run_finishes_on_every_preset_with_its_defaults(base, tmp_path, preset):
    """The CPU preset's refit_head (a head-only setting) once crashed a run without a head."""
    prepare(qa_csv(tmp_path / "qa.csv", 12), tmp_path / "ds", load_tokenizer(base),
            input_field="instruction", output_field="response", eval_fraction=0.25)
    config = load_config(preset).model_copy(update=TINY)
    result = train_on_pairs(config, base, tmp_path / "ds", tmp_path / "out", progress=False)
    assert result.steps == 2 and "refit_items" not in result.final_eval
    spec = SpecialistSpec.model_validate_json((tmp_path / "out" / SPEC_FILE).read_text())
    assert spec.head is None and spec.task == "pairs" and spec.num_layers is None


def test_a_pairs_config_leaves_the_presets_price_settings_aside(tmp_path):
    cpu = load_config("cpu", pairs=True)
    assert not cpu.head and not cpu.refit_head and cpu.num_layers is None and not cpu.head_layers
    assert cpu.chat_template is None  # the CPU price run's "no chat template" is for descriptions
    assert cpu.max_steps == PRESETS["cpu"].max_steps and cpu.lora.top_layers == 8
    override = tmp_path / "c.json"
    override.write_text('{"chat_template": false, "refit_head": true}')
    told = load_config("cpu", override, pairs=True)
    assert told.chat_template is False and not told.refit_head  # no head: nothing to refit


@pytest.mark.parametrize(("text", "expected"), [
    ("question,answer\n", "missing column(s) instruction, response (columns: answer, question)"),
    ("question,answer\nWhat?,This.\n", "qa.csv:1: missing column(s) instruction, response"),
    ("", "no examples"),
    ("instruction,response\n", "no examples"),
    ("instruction,response\nonly,one\n", "at least two examples"),
    ("instruction,response\n" + "x" * 200_000 + ",y\n", "qa.csv:2: not readable CSV"),  # a tryout's traceback
])
def test_bad_pairs_files_are_one_clear_line(base, tmp_path, monkeypatch, text, expected):
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    (tmp_path / "qa.csv").write_text(text, encoding="utf-8")
    result = cli("train", "specialist", "--pairs", str(tmp_path / "qa.csv"), "--input-field",
                 "instruction", "--output-field", "response", "--base", str(base), "--out",
                 str(tmp_path / "run"))
    assert result.exit_code == 1 and expected in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_pairs_longer_than_the_context_are_named(base, tmp_path, monkeypatch):
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    qa_csv(tmp_path / "qa.csv", 6, answer=lambda i: "word " * (700 if i == 3 else 2))
    result = cli("train", "specialist", "--pairs", str(tmp_path / "qa.csv"), "--input-field",
                 "instruction", "--output-field", "response", "--base", str(base), "--out",
                 str(tmp_path / "run"), "--max-steps", "1")
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "qa.csv:5:" in text, result.output
    assert "more than the base model's context of 512" in text


def test_held_out_scores_before_and_after_in_the_summary(learnable, tmp_path):
    """A constant short answer is learnt (exact match 0 -> 1); a long answer is scored by loss."""
    rows = [{"input": f"Where is the tower number {i}?", "output": "Paris"} for i in range(30)]
    rows += [{"input": f"Describe tower {i}.", "output": "It is a tall iron tower. " * 8}
             for i in range(10)]
    source = tmp_path / "p.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    prepare(source, tmp_path / "ds", load_tokenizer(learnable), eval_fraction=0.25, seed=3)
    config = load_config("cpu", pairs=True).model_copy(update={
        **TINY, "max_steps": 40, "lr": 1e-2, "batch_size": 8, "eval_items": 10, "score_items": 10})
    result = train_on_pairs(config, learnable, tmp_path / "ds", tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["heldout"] == result.heldout and summary["seed"] == config.seed
    before, after = result.heldout["before"], result.heldout["after"]
    assert before["short"] + before["long"] == 10
    assert before["exact"] == 0 and after["exact"] == 1 and after["f1"] == 1
    assert after["loss"] < before["loss"]


def test_token_f1_and_normalization():
    assert normalize(" The  Eiffel-Tower! ") == "the eiffel tower"
    assert token_f1("the tower", "The Tower.") == 1.0
    assert token_f1("a red car", "red car") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0 and token_f1("x", "y") == 0.0


def test_any_run_exports_from_the_cli(base, tmp_path, monkeypatch):
    """export once read only <data>/models/specialist."""
    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    qa_csv(tmp_path / "qa.csv", 12)
    trained = cli("train", "specialist", "--pairs", str(tmp_path / "qa.csv"), "--input-field",
                  "instruction", "--output-field", "response", "--base", str(base), "--out",
                  str(tmp_path / "runs" / "qa"), "--max-steps", "2")
    assert trained.exit_code == 0, trained.output
    assert "held-out pairs before fine-tuning" in trained.output
    exported = cli("train", "export", "--run", str(tmp_path / "runs" / "qa"))
    assert exported.exit_code == 0, exported.output
    out = tmp_path / "runs" / "qa-export"
    assert (out / "Modelfile").is_file() and (out / "model.gguf").is_file()
    assert "ollama create dealscout-qa" in " ".join(exported.output.split())
    missing = cli("train", "export", "--run", str(tmp_path / "nothing"))
    assert missing.exit_code == 1 and "no trained run" in missing.output
    itself = cli("train", "export", "--run", str(tmp_path / "runs" / "qa"), "--out", str(tmp_path / "runs" / "qa"))
    assert itself.exit_code == 1 and "not the run itself" in itself.output  # was a SameFileError
    assert (tmp_path / "runs" / "qa" / SPEC_FILE).is_file()
    shutil.copytree(tmp_path / "runs" / "qa", tmp_path / "runs" / "other")
    other_spec = (tmp_path / "runs" / "other" / SPEC_FILE).read_text()
    onto_a_run = cli("train", "export", "--run", str(tmp_path / "runs" / "qa"), "--out", str(tmp_path / "runs" / "other"))
    assert onto_a_run.exit_code == 1 and "holds a trained run" in onto_a_run.output
    assert (tmp_path / "runs" / "other" / SPEC_FILE).read_text() == other_spec  # nothing overwritten
    again = cli("train", "export", "--run", str(tmp_path / "runs" / "qa"))  # over its own earlier export
    assert again.exit_code == 0, again.output


def test_the_modelfile_is_written_from_the_run(base, tmp_path):
    """It once described the price specialist (num_predict 8, a bare prompt) whatever the run."""
    long_answer = "one two three four five six seven eight nine ten eleven twelve"
    prepare(qa_csv(tmp_path / "qa.csv", 12, answer=lambda i: long_answer if i == 0 else "yes"),
            tmp_path / "ds", load_tokenizer(base), input_field="instruction",
            output_field="response", eval_fraction=0.25)
    train_on_pairs(load_config("cpu", pairs=True).model_copy(update=TINY), base, tmp_path / "ds",
                   tmp_path / "run", progress=False)
    spec = SpecialistSpec.model_validate_json((tmp_path / "run" / SPEC_FILE).read_text())
    tokenizer = load_tokenizer(base)
    assert spec.prompt.chat and spec.system is None and spec.data == "qa.csv"
    longest = len(tokenizer(long_answer + tokenizer.eos_token, add_special_tokens=False).input_ids)
    assert spec.max_answer_tokens == longest  # the only long answer is in the training part
    text = export(tmp_path / "run", tmp_path / "export")["modelfile"].read_text()
    assert "price" not in text.lower() and "qa.csv" in text
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    trained_prompt = tokenizer.apply_chat_template([{"role": "user", "content": "{{ .Prompt }}"}],
                                                   add_generation_prompt=True, tokenize=False)
    assert template == trained_prompt and "SYSTEM" not in text
    assert f"PARAMETER num_predict {longest + 4}" in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "FROM ./model.gguf" in text
    assert "PARAMETER repeat_penalty 1" in text  # Ollama's 1.1 turned a trained "500" into "50"


def test_sharegpt_with_a_system_turn_puts_it_in_the_modelfile(base, tmp_path):
    system = "You answer in one word."
    talks = [{"conversations": [{"from": "system", "value": system},
                                {"from": "human", "value": f"Colour of thing {i}?"},
                                {"from": "gpt", "value": "Blue"}]} for i in range(8)]
    (tmp_path / "talks.json").write_text(json.dumps(talks), encoding="utf-8")
    tokenizer = load_tokenizer(base)
    prepare(tmp_path / "talks.json", tmp_path / "ds", tokenizer, eval_fraction=0.25)
    train_on_pairs(load_config("cpu", pairs=True).model_copy(update=TINY), base, tmp_path / "ds",
                   tmp_path / "run", progress=False)
    text = export(tmp_path / "run", tmp_path / "export")["modelfile"].read_text()
    assert f'SYSTEM """{system}"""' in text
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    filled = template.replace("{{ .System }}", system).replace("{{ .Prompt }}", "Colour of thing 1?")
    assert filled == tokenizer.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": "Colour of thing 1?"}],
        add_generation_prompt=True, tokenize=False)  # exactly what the run trained on


def test_csv_to_gguf_answers_in_llama_cpp_as_in_transformers(learnable, tmp_path, monkeypatch):
    """The README's path on the tiny model: CSV -> train (default preset, few steps) -> export ->
    DealScout's local chat model (llama.cpp) and transformers give the same greedy answer."""
    pytest.importorskip("llama_cpp")
    from transformers import AutoModelForCausalLM

    from models.config import Settings
    from models.llm import Message
    from models.providers import make_chat_model

    monkeypatch.setenv("DEALSCOUT_DATA_DIR", str(tmp_path / "var"))
    qa_csv(tmp_path / "qa.csv", 24, answer=lambda i: "Paris")
    (tmp_path / "fast.json").write_text('{"lr": 0.01}')  # a tiny random model learns it in 40 steps
    trained = cli("train", "specialist", "--pairs", str(tmp_path / "qa.csv"), "--input-field",
                  "instruction", "--output-field", "response", "--base", str(learnable), "--out",
                  str(tmp_path / "run"), "--max-steps", "40", "--config", str(tmp_path / "fast.json"))
    assert trained.exit_code == 0, trained.output
    exported = cli("train", "export", "--run", str(tmp_path / "run"))
    assert exported.exit_code == 0, exported.output
    out = tmp_path / "run-export"

    question = "What is item 99?"
    tokenizer = load_tokenizer(out / "merged")
    merged = AutoModelForCausalLM.from_pretrained(str(out / "merged"), dtype=torch.float32)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                           add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        ids = merged.generate(**prompt, max_new_tokens=8, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)
    theirs = tokenizer.decode(ids[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)

    model = make_chat_model(f"local:{out}", Settings(data_dir=tmp_path / "var"))
    ours = model.chat([Message(role="user", content=question)], max_tokens=8).content
    assert theirs.strip() == "Paris" and ours.strip() == theirs.strip()

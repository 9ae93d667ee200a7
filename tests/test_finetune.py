"""Specialist fine-tuning on a tiny model: trains, saves, resumes exactly, reloads, predicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from specialist_fixtures import priced_items, tiny_base

from agents.pricing.specialist import SpecialistAgent
from models.specialist import (
    ADAPTER_DIR,
    HEAD_FILE,
    SPEC_FILE,
    SpecialistModel,
    SpecialistSpec,
    load_tokenizer,
)
from training.finetune import train_on_pairs, train_specialist
from training.finetune_config import PRESETS, FinetuneConfig, FinetuneError, LoraOptions, load_config
from training.finetune_data import prepare
from training.lora_model import load_lm

ITEMS = priced_items(48)
TRAIN, VAL = ITEMS[:40], ITEMS[40:]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_base(tmp_path_factory)


def tiny_config(**changes) -> FinetuneConfig:
    fields = {"max_steps": 6, "batch_size": 4, "eval_items": 8, "eval_every": 3, "save_every": 2,
              "max_text_tokens": 24, "lora": LoraOptions(r=4, alpha=8, dropout=0.1),
              "lm_loss_weight": 0.2, "head_lr": 1e-2, "threads": 1}
    return FinetuneConfig(**{**fields, **changes})


def test_tiny_run_trains_saves_reloads_and_predicts(base, tmp_path):
    result = train_specialist(tiny_config(), base, TRAIN, VAL, tmp_path, progress=False)
    assert result.steps == 6 and {"loss", "head", "lm", "mae"} <= set(result.final_eval)
    for name in (SPEC_FILE, HEAD_FILE, "history.json", "loss.png", f"{ADAPTER_DIR}/adapter_config.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["train"]) == 6 and history["eval"][-1][0] == 6
    spec = SpecialistSpec.model_validate_json((tmp_path / SPEC_FILE).read_text())
    assert spec.generation_trained and spec.head is not None and spec.prompt.template.endswith("$")

    agent = SpecialistAgent.load(tmp_path)
    estimates = agent.estimate_batch([item.text for item in VAL])
    assert all(0.5 <= e.value <= 999.49 and e.agent == "specialist" for e in estimates)
    model = SpecialistModel.load(tmp_path)
    assert model.predict([VAL[0].text]) == pytest.approx([estimates[0].value], rel=1e-4)


def test_the_head_learns_the_price_signal(base, tmp_path):
    config = tiny_config(max_steps=25, lm_loss_weight=0.0, eval_every=100, save_every=100,
                         head_lr=2e-2, lr=2e-3)
    train_specialist(config, base, ITEMS[:40], ITEMS[40:], tmp_path, progress=False)
    model = SpecialistModel.load(tmp_path)
    probe = priced_items(12, seed=7)
    guesses = model.predict([item.text for item in probe])
    cheap = [g for g, item in zip(guesses, probe, strict=True) if item.price < 100]
    dear = [g for g, item in zip(guesses, probe, strict=True) if item.price >= 100]
    assert min(dear) > max(cheap)


def test_ridge_refit_learns_the_price_signal_in_one_pass(base, tmp_path):
    config = tiny_config(max_steps=2, lm_loss_weight=0.0, refit_head=True, lr=1e-6, head_lr=1e-6)
    result = train_specialist(config, base, ITEMS[:40], ITEMS[40:], tmp_path, progress=False)
    assert result.final_eval["refit_items"] == 40
    history = json.loads((tmp_path / "history.json").read_text())
    before, after = history["eval"][-2][1], history["eval"][-1][1]
    assert after["mae"] < before["mae"] / 2
    probe = priced_items(12, seed=7)
    guesses = SpecialistModel.load(tmp_path).predict([item.text for item in probe])
    cheap = [g for g, item in zip(guesses, probe, strict=True) if item.price < 100]
    dear = [g for g, item in zip(guesses, probe, strict=True) if item.price >= 100]
    assert min(dear) > max(cheap)


def test_fit_ridge_recovers_a_weighted_linear_rule():
    from training.head_refit import fit_ridge

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(400, 5))
    y = x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + 4.0
    coef, bias, _ = fit_ridge(x, y, np.ones(400))
    assert np.allclose(x @ coef + bias, y, atol=0.05)
    y2 = y.copy()
    y2[:200] += 10.0  # two rules: the weighted half should win
    weights = np.r_[np.full(200, 0.01), np.full(200, 10.0)]
    coef, bias, _ = fit_ridge(x, y2, weights)
    assert abs(np.mean(x[200:] @ coef + bias - y[200:])) < abs(np.mean(x[:200] @ coef + bias - y2[:200]))


def test_balanced_sampling_favours_rare_categories_and_is_deterministic(base, tmp_path):
    from training.finetune import Finetune, specialist_format
    from training.finetune_data import price_rows

    items = priced_items(60)
    for item in items[:50]:
        item.category = "Software"
    tokenizer = load_tokenizer(base)
    config = tiny_config(balance=1.0)
    fmt = specialist_format(tokenizer, config)
    run = Finetune(config, base, tmp_path, fmt, price_rows(items, tokenizer, fmt),
                   price_rows(items[:4], tokenizer, fmt), progress=False)
    draws = [e.group for step in range(50) for e in run.batch_at(step, 0)]
    assert 0.3 < draws.count("Software") / len(draws) < 0.45  # 1 of 3 groups, not 50 of 60
    assert [e.ids for e in run.batch_at(7, 0)] == [e.ids for e in run.batch_at(7, 0)]


def test_resume_continues_exactly(base, tmp_path):
    config = tiny_config(keep_checkpoints=1)
    straight = train_specialist(config, base, TRAIN, VAL, tmp_path / "a", progress=False)
    assert straight.steps == 6
    checkpoint = tmp_path / "a" / "checkpoints" / "step-000004"
    assert checkpoint.is_dir() and not (tmp_path / "a" / "checkpoints" / "step-000002").exists()
    shutil.copytree(checkpoint, tmp_path / "b" / "checkpoints" / checkpoint.name)
    resumed = train_specialist(config, base, TRAIN, VAL, tmp_path / "b", progress=False)
    assert resumed.steps == 6
    for name in ("adapter/adapter_model.safetensors", HEAD_FILE):
        a, b = load_file(str(tmp_path / "a" / name)), load_file(str(tmp_path / "b" / name))
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name
    assert resumed.final_eval["loss"] == pytest.approx(straight.final_eval["loss"], rel=1e-5)


def test_time_budget_shortens_the_schedule(base, tmp_path):
    result = train_specialist(tiny_config(max_steps=500, time_budget_minutes=0.001), base, TRAIN,
                              VAL, tmp_path, progress=False)
    assert 3 <= result.steps < 50


def test_budget_follows_speed_early_then_only_shortens():
    import time

    from training.finetune import Finetune, Plan

    run = Finetune.__new__(Finetune)  # only the scheduling state matters here
    run.config = FinetuneConfig(max_steps=400, time_budget_minutes=10, eval_items=8, batch_size=8)
    run.eval_set, run.plan, run.step = [None] * 8, Plan(total=100, warmup=5), 10
    run._fit_budget(time.monotonic() - 10, first=0)  # 1 s a step: room for more, up to max_steps
    assert run.plan.total == 400
    run.step = 200  # past the first quarter: never longer again
    run._fit_budget(time.monotonic() - 100, first=0)
    assert run.plan.total == 400
    run._fit_budget(time.monotonic() - 500, first=0)  # 2.5 s a step, 100 s left
    assert 200 <= run.plan.total < 240


def test_num_layers_keeps_only_the_bottom_layers(base, tmp_path):
    config = tiny_config(num_layers=2, lm_loss_weight=0.0, lora=LoraOptions(r=4, top_layers=1))
    train_specialist(config, base, TRAIN, VAL, tmp_path, progress=False)
    model = SpecialistModel.load(tmp_path)
    assert model.lm.config.num_hidden_layers == 2 and len(model.lm.model.layers) == 2
    assert not model.spec.generation_trained
    adapter = load_file(str(tmp_path / ADAPTER_DIR / "adapter_model.safetensors"))
    assert adapter and all(".layers.1." in key for key in adapter)


def test_the_head_can_read_several_layers(base, tmp_path):
    config = tiny_config(num_layers=3, head_layers=[0, 1, 3], lm_loss_weight=0.0, refit_head=True)
    train_specialist(config, base, TRAIN, VAL, tmp_path, progress=False)
    spec = SpecialistSpec.model_validate_json((tmp_path / SPEC_FILE).read_text())
    assert spec.head.layers == [0, 1, 3]
    model = SpecialistModel.load(tmp_path)
    hidden = model.lm.config.hidden_size
    assert model.head.net[-1].weight.shape == (1, 2 * hidden * 3)
    texts = [item.text for item in VAL]
    one_by_one = [model.predict([text])[0] for text in texts]
    assert model.predict(texts) == pytest.approx(one_by_one, rel=1e-4)  # padding changes nothing


def test_head_layers_outside_the_model_are_a_clear_error(base, tmp_path):
    with pytest.raises(FinetuneError, match=r"head layers must be 0\.\.2"):
        train_specialist(tiny_config(num_layers=2, head_layers=[1, 5], lm_loss_weight=0.0), base,
                         TRAIN, VAL, tmp_path, progress=False)


def test_any_prompt_completion_file_trains_generation(base, tmp_path):
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps({"input": f"Say {i}", "output": f"{i}"}) + "\n"
                              for i in range(12)), encoding="utf-8")
    prepare(source, tmp_path / "ds", load_tokenizer(base), eval_fraction=0.25)
    result = train_on_pairs(tiny_config(max_steps=3), base, tmp_path / "ds", tmp_path / "out",
                            progress=False)
    assert set(result.final_eval) == {"lm", "loss"}
    spec = SpecialistSpec.model_validate_json((tmp_path / "out" / SPEC_FILE).read_text())
    assert spec.head is None and spec.generation_trained
    answers = SpecialistModel.load(tmp_path / "out").predict(["Say 3"])
    assert len(answers) == 1


def test_presets_and_config_errors(tmp_path):
    assert load_config("cpu") == PRESETS["cpu"] and load_config("full").lm_loss_weight > 0
    override = tmp_path / "c.json"
    override.write_text('{"max_steps": 7, "lora": {"r": 4}}')
    changed = load_config("cpu", override)
    assert changed.max_steps == 7 and changed.lora.r == 4 and changed.lora.top_layers == 8
    for text, message in [('{"max_steps": 0}', "max_steps"), ('{"bogus": 1}', "bogus"),
                          ("[1]", "JSON object"), ("{oops", "cannot read")]:
        override.write_text(text)
        with pytest.raises(FinetuneError, match=message):
            load_config("cpu", override)
    with pytest.raises(FinetuneError, match="unknown preset"):
        load_config("huge")
    with pytest.raises(ValueError, match="num_layers"):
        FinetuneConfig(num_layers=4, lm_loss_weight=0.5)


def test_the_full_preset_runs_as_written_but_for_its_length(base, tmp_path):
    """CI has no GPU: the GPU preset's own settings (LoRA on every layer, completion loss,
    precision auto -> fp32 here) go through a two-step run."""
    config = load_config("full").model_copy(update={
        "max_steps": 2, "batch_size": 4, "eval_items": 4, "threads": 1})
    result = train_specialist(config, base, TRAIN, VAL, tmp_path, progress=False)
    assert result.steps == 2 and {"head", "lm", "mae"} <= set(result.final_eval)
    spec = SpecialistSpec.model_validate_json((tmp_path / SPEC_FILE).read_text())
    assert spec.generation_trained and spec.num_layers is None
    assert len(SpecialistModel.load(tmp_path).predict([VAL[0].text])) == 1


def test_four_bit_needs_a_gpu(base):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(FinetuneError, match="CUDA"):
        load_lm(base, FinetuneConfig(load_in_4bit=True), torch.device("cpu"))


def test_bad_training_rows_are_refused(base, tmp_path):
    with pytest.raises(FinetuneError, match="at least one"):
        train_specialist(tiny_config(), base, TRAIN, [], tmp_path, progress=False)

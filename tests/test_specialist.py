"""The specialist agent (caching, fallbacks, the Pricer protocol) and its export for Ollama."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from specialist_fixtures import priced_items, tiny_base

from agents.pricing.specialist import SpecialistAgent
from agents.pricing.text import DescriptionError
from models.config import Settings
from models.specialist import SPEC_FILE, SpecialistError, SpecialistModel
from models.text import first_amount as parse_price
from models.types import Pricer
from training.export import ExportError, export, merge, ollama_template, write_modelfile
from training.finetune import train_specialist
from training.finetune_config import FinetuneConfig, LoraOptions


@pytest.mark.parametrize(("text", "expected"), [
    ("129.00", 129.0), ("1,299.99 and more", 1299.99), ("$45", 45.0), ("about 30 dollars", 30.0),
    (" 7", 7.0), ("no idea", None), ("", None), ("0.00", None), ("-", None),
])
def test_parse_price(text, expected):
    assert parse_price(text) == expected


class CountingModel:
    def __init__(self, answers: dict[str, float | None]):
        self.answers, self.calls = answers, []

    def predict(self, texts: list[str]) -> list[float | None]:
        self.calls.append(list(texts))
        return [self.answers[t] for t in texts]


def test_agent_caches_batches_and_falls_back():
    model = CountingModel({"a kettle": 25.0, "a mystery": None, "a sofa": 400.0})
    agent = SpecialistAgent(model, fallback_price=30.0, cache_size=2)
    assert isinstance(agent, Pricer)
    first = agent.estimate_batch(["a kettle", "a  mystery", "a kettle"])
    assert [e.value for e in first] == [25.0, 30.0, 25.0]
    assert "training median" in first[1].note and first[0].note == ""
    assert model.calls == [["a kettle", "a mystery"]]
    assert agent.estimate("<b>a kettle</b>").value == 25.0 and len(model.calls) == 1
    agent.estimate("a sofa")  # evicts the least recently used (the mystery)
    agent.estimate("a mystery")
    assert model.calls[-1] == ["a mystery"]
    with pytest.raises(DescriptionError):
        agent.estimate("   ")


def test_no_specialist_until_trained(tmp_path):
    assert SpecialistAgent.from_settings(Settings(data_dir=tmp_path)) is None
    with pytest.raises(SpecialistError, match="train specialist"):
        SpecialistModel.load(tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    base = tiny_base(tmp_path_factory)
    out = tmp_path_factory.mktemp("specialist")
    config = FinetuneConfig(max_steps=4, batch_size=4, eval_items=4, max_text_tokens=24,
                            lm_loss_weight=0.5, lora=LoraOptions(r=4, alpha=8), threads=1)
    items = priced_items(24)
    train_specialist(config, base, items[:20], items[20:], out, progress=False)
    return base, out


def test_specialist_from_settings_loads_the_trained_folder(trained, tmp_path):
    base, out = trained
    models = tmp_path / "models"
    models.mkdir()
    (models / "specialist").symlink_to(out, target_is_directory=True)
    agent = SpecialistAgent.from_settings(Settings(data_dir=tmp_path))
    assert agent is not None and agent.estimate("premium large steel cabinet").value > 0



def test_the_untuned_base_is_a_reference_model_by_name(trained, tmp_path):
    from training.registry import load_model, model_names

    base, _ = trained
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValueError, match="train base"):
        load_model("specialist_untuned", settings)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "base").symlink_to(base, target_is_directory=True)
    with pytest.raises(ValueError, match="no train split"):
        load_model("specialist_untuned", settings)
    settings.split_dir.mkdir(parents=True)
    (settings.split_dir / "train.jsonl").write_text(
        "".join(item.model_dump_json() + "\n" for item in priced_items(5)), encoding="utf-8")
    untuned = load_model("specialist_untuned", settings)
    assert "specialist_untuned" not in model_names()  # minutes of generation: asked for by name
    estimate = untuned.estimate("premium large steel cabinet")  # a random tiny model: any number
    assert 0.5 <= estimate.value <= 999.49

def test_merged_export_matches_base_plus_adapter(trained, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base, out = trained
    written = export(out, tmp_path / "export")
    merged = AutoModelForCausalLM.from_pretrained(str(written["merged"]), dtype=torch.float32)
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32), str(out / "adapter"))
    ids = torch.tensor([[5, 17, 300, 42, 7]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, tuned(ids).logits, atol=1e-4)
    assert (tmp_path / "export" / SPEC_FILE).is_file()
    assert (tmp_path / "export" / "head.safetensors").is_file()
    assert not list(written["merged"].glob("head*"))  # converters read every *.safetensors there


def test_modelfile_holds_the_training_prompt_and_stops(trained, tmp_path):
    _, out = trained
    written = export(out, tmp_path / "export")
    text = written["modelfile"].read_text()
    source = text.split("FROM ", 1)[1].splitlines()[0]
    assert (written["modelfile"].parent / source).exists()
    assert "How much does this cost to the nearest dollar?\n\n{{ .Prompt }}\n\nPrice is $" in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0" in text
    assert text.count('"""') == 2


def test_gguf_export_runs_in_llama_cpp_like_transformers(trained, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    from transformers import AutoModelForCausalLM

    _, out = trained
    written = export(out, tmp_path / "export")
    assert written["gguf"] is not None and written["gguf"].stat().st_size > 0
    ids = [5, 17, 300, 42, 7, 1000, 23]
    llm = llama_cpp.Llama(model_path=str(written["gguf"]), n_ctx=64, logits_all=True, verbose=False,
                          n_threads=1)
    llm.eval(ids)
    ours = np.array(llm.scores[len(ids) - 1])
    merged = AutoModelForCausalLM.from_pretrained(str(written["merged"]), dtype=torch.float32)
    with torch.no_grad():
        theirs = merged(torch.tensor([ids])).logits[0, -1].numpy()
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99


def test_export_without_a_specialist_says_so(tmp_path):
    with pytest.raises(ExportError, match="train specialist"):
        export(tmp_path / "nothing", tmp_path / "out")


def test_ollama_template_uses_the_chat_template_when_trained_with_it(trained, tmp_path):
    _, out = trained
    from models.specialist import SpecialistSpec, load_tokenizer

    merged = merge(out, tmp_path / "merged")
    spec = SpecialistSpec.model_validate_json((out / SPEC_FILE).read_text())
    chat = spec.model_copy(update={"prompt": spec.prompt.model_copy(update={"chat": True})})
    tokenizer = load_tokenizer(merged)
    template = ollama_template(chat, tokenizer)
    assert template.startswith("<|im_start|>system") and "{{ .Prompt }}" in template
    assert template.endswith("<|im_start|>assistant\n")
    modelfile = write_modelfile(tmp_path, chat, tokenizer, merged).read_text()
    assert modelfile.startswith("# DealScout specialist") and "FROM ./merged\n" in modelfile

"""The distributed store build for real: a Ray head on loopback, a `chroma run` server, a tiny
catalogue. Same ids and vectors as the local build, a worker killed mid-build is survived, a
rerun resumes, and the run reports its rate. Skipped where the `scale` extra is not installed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the scale extra (pip install .[scale]) is not installed")

from agents.pricing import main_pricer, pricers  # noqa: E402
from models.config import Settings  # noqa: E402
from models.embeddings import Embedder  # noqa: E402
from models.types import Item  # noqa: E402
from tests.running_app import free_port  # noqa: E402
from training.distributed import (  # noqa: E402
    EmbedBatch,
    ScaleError,
    build_store_on_ray,
    connect,
    price_answer,
    price_on_ray,
)
from vectorstore.store import VectorStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KINDS = ["cordless drill 18V", "noise cancelling headphones", "ceramic brake pads", "stand mixer 5 quart",
         "USB-C charger 65W", "acoustic guitar strings", "4K smart TV 55 inch", "robot vacuum"]
ITEMS = [Item(title=f"{kind} model {n}", category="Electronics", price=10.0 + 7 * n,
              text=f"{kind} model {n}, {'with case and spare parts, ' * (n % 4)}warranty {n % 3 + 1} years")
         for n, kind in enumerate(KINDS * 5)]


def _started(process: subprocess.Popen, ready, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    """Ends the process group this test started (the head and the workers it spawned), no other."""
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 20)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    port = free_port()
    process = subprocess.Popen([str(BIN / "chroma"), "run", "--path", str(tmp_path_factory.mktemp("chroma")),
                                "--host", "127.0.0.1", "--port", str(port)], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _started(process, ready, "chroma run")
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def ray_address():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                                "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false",
                                "--disable-usage-stats"], env=env, cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"

    def ready() -> bool:
        try:
            connect(address)
            return True
        except ScaleError:
            return False

    try:
        _started(process, ready, "the Ray head")
        yield address
    finally:
        ray.shutdown()
        _stop(process)


class DiesOnce(EmbedBatch):
    """The first batch any actor of this run gets kills its worker process outright (as kill -9
    would); Ray restarts the actor and hands the batch over again."""

    marker = ""

    def __call__(self, batch):
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return super().__call__(batch)


def stored(store: VectorStore) -> dict[str, np.ndarray]:
    got = store.collection.get(include=["embeddings"])
    return dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32), strict=True))


def test_distributed_build_matches_local_survives_a_killed_worker_and_resumes(tmp_path, chroma_url, ray_address):
    local = VectorStore.open(Embedder(), chroma_dir=tmp_path / "local")
    local.build(ITEMS, progress=False)
    expected = stored(local)

    settings = Settings(_env_file=None, data_dir=tmp_path, chroma_url=chroma_url)
    remote = VectorStore.from_settings(Embedder(), settings)
    # An earlier build was cut off after 7 items: the cluster embeds only the rest.
    done_before = sorted(expected)[:7]
    remote.collection.upsert(ids=done_before, embeddings=np.stack([expected[i] for i in done_before]))
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    DiesOnce.marker = str(tmp_path / "a-worker-died")
    run = build_store_on_ray(remote, ITEMS, None, settings, ray_address, actor=DiesOnce)

    assert Path(DiesOnce.marker).exists()  # a worker did die mid-build
    assert run.done == len(expected) - 7 and run.per_s > 0
    got = stored(remote)
    assert set(got) == set(expected)
    for item_id, vector in expected.items():
        assert np.allclose(got[item_id], vector, atol=1e-5), item_id
    assert build_store_on_ray(remote, ITEMS, None, settings, ray_address).done == 0  # nothing left to do


def test_a_backlog_priced_on_the_cluster_answers_as_it_would_locally(tmp_path, chroma_url, ray_address):
    settings = Settings(_env_file=None, data_dir=tmp_path, chroma_url=chroma_url)
    remote = VectorStore.from_settings(Embedder(), settings)
    build_store_on_ray(remote, ITEMS, None, settings, ray_address)  # a no-op after the test above
    backlog = ["robot vacuum with self-emptying base", "<p> </p>", "ceramic brake pads, front axle"]

    answers, run = price_on_ray(ray_address, backlog, settings)

    assert run.done == 3 and run.per_s > 0
    local = main_pricer(pricers(settings))
    assert local.name == "frontier"  # the agent the store makes: no forest or ensemble here
    for text, answer in zip(backlog, answers, strict=True):
        expected = price_answer(local, text)
        if "error" in expected:
            assert answer == expected
        else:
            assert answer["estimate"]["value"] == pytest.approx(expected["estimate"]["value"], rel=1e-4)
            assert [n["title"] for n in answer["estimate"]["evidence"]] == \
                [n["title"] for n in expected["estimate"]["evidence"]]
    assert "error" in answers[1] and answers[0]["estimate"]["value"] > 0


def test_an_unreachable_cluster_is_one_clear_sentence(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: (_ for _ in ()).throw(ConnectionError("no GCS at 127.0.0.1:1\nmore")))
    with pytest.raises(ScaleError, match=r"^cannot reach the Ray cluster at 127.0.0.1:1: no GCS at 127.0.0.1:1$"):
        connect("127.0.0.1:1")

"""Inference on Ray: predictions and generations from an actor pool equal the local ones."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.ray_support import ray_cluster  # noqa: F401  # the session's Ray cluster fixture

from llmguard_ops import Status

pytest.importorskip("ray.data")

pytestmark = pytest.mark.usefixtures("ray_cluster")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _session(root: Path, suite: dict[str, Any], backend: Any = None, out: str = "out") -> Any:
    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager
    from llmguard_ops.runner import Session

    body = {"apiVersion": "llmguard/v1", "name": "ray-inference", "seed": 5, **suite}
    (root / "suite.yaml").write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    host = get_plugin_manager()
    session = Session.open(load_suite(root / "suite.yaml", host.registry()), host, root / out)
    session.cache.backend = backend
    return session


def _ctx(session: Any) -> Any:
    return session.context(session.loaded.suite.checks[0])


def _ray(**kwargs: Any) -> Any:
    from llmguard_ops.executors.ray_data import RayInference

    return RayInference(**{"actors": 2, "num_cpus": 0.5, **kwargs})


def _tabular(root: Path, n: int = 300) -> dict[str, Any]:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    frame["label"] = ((frame.a - frame.b + rng.normal(scale=0.5, size=n)) > 0).astype(int)
    frame.to_csv(root / "data.csv", index=False)
    forest = RandomForestClassifier(n_estimators=15, random_state=0).fit(frame[["a", "b", "c", "d"]], frame.label)
    joblib.dump(forest, root / "forest.joblib")
    return {
        "models": {"candidate": {"loader": "sklearn", "path": "forest.joblib"}},
        "datasets": {"current": {"path": "data.csv", "target": "label"}},
        "checks": [
            {
                "id": "perf",
                "uses": "performance.classification",
                "with": {"model": "candidate", "dataset": "current", "n_resamples": 50},
                "timeout": 120,
            }
        ],
    }


@pytest.mark.slow  # the first pass of the session also starts Ray's workers
def test_predictions_on_actors_equal_the_local_ones_in_order(tmp_path: Path) -> None:
    suite = _tabular(tmp_path)
    local = _session(tmp_path, suite, out="local")
    remote = _session(tmp_path, suite, _ray(batch_size=40), out="ray")  # 300 rows: 8 batches on 2 actors
    for method in ("predict", "predict_proba"):
        want, got = (
            _ctx(local).predict("candidate", "current", method),
            _ctx(remote).predict("candidate", "current", method),
        )
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want), method
    # the check itself then reads the cached predictions: same metrics to the last bit
    a = local.run_check(local.loaded.suite.checks[0])
    b = remote.run_check(remote.loaded.suite.checks[0])
    assert a.status is b.status and b.error is None
    assert {k: m.value for k, m in a.metrics.items()} == {k: m.value for k, m in b.metrics.items()}
    assert remote.cache.stats() == local.cache.stats()  # each (model, dataset, method) computed once


def test_a_model_file_changed_under_the_actors_is_an_error(tmp_path: Path) -> None:
    import joblib
    from sklearn.dummy import DummyClassifier

    session = _session(tmp_path, _tabular(tmp_path, n=60), _ray())
    frame = pd.read_csv(tmp_path / "data.csv")
    joblib.dump(DummyClassifier().fit(frame[["a", "b"]], frame.label), tmp_path / "forest.joblib")  # after loading
    result = session.run_check(session.loaded.suite.checks[0])
    assert result.status is Status.ERROR
    assert result.error is not None
    message = result.error.message
    assert message.startswith("model 'candidate' on a Ray actor: what this worker would load (forest.joblib)")
    assert f"not the run's {session.models['candidate'].sha256}" in message


DYING = """
import os


class DiesOffDriver:
    '''Answers in the process that loaded it first; any other process (an actor) dies.'''

    def __init__(self, driver_pid):
        self.driver_pid = driver_pid

    def predict(self, x):
        if os.getpid() != self.driver_pid:
            os._exit(3)
        return [0] * len(x)

    def predict_proba(self, x):
        return [[1.0, 0.0]] * len(self.predict(x))


def make(driver_pid):
    return DiesOffDriver(driver_pid)


class Raises:
    def predict(self, x):
        raise ValueError("no such feature on purpose")

    def predict_proba(self, x):
        return self.predict(x)


def raises():
    return Raises()
"""


def test_an_actor_that_dies_or_raises_is_an_error_of_the_check_not_a_hang(tmp_path: Path) -> None:
    suite = _tabular(tmp_path, n=40)
    (tmp_path / "models.py").write_text(textwrap.dedent(DYING), encoding="utf-8")
    suite["models"]["candidate"] = {
        "loader": "python",
        "path": "models.py:make",
        "options": {"kwargs": {"driver_pid": os.getpid()}},
    }
    session = _session(tmp_path, suite, _ray())
    result = session.run_check(session.loaded.suite.checks[0])
    assert result.status is Status.ERROR
    assert result.error is not None and result.error.type == "ArtifactError"
    assert "model 'candidate'" in result.error.message and "died" in result.error.message
    suite["models"]["candidate"] = {"loader": "python", "path": "models.py:raises"}
    session = _session(tmp_path, suite, _ray(), out="raises")
    result = session.run_check(session.loaded.suite.checks[0])
    assert result.status is Status.ERROR and result.error is not None  # the model's own error, in one line
    assert result.error.message == "model 'candidate' on a Ray actor: ValueError: no such feature on purpose"


def _generation_suite(model: dict[str, Any]) -> dict[str, Any]:
    return {
        "models": {"candidate": model},
        "datasets": {"prompts": {"path": "prompts.jsonl", "text": "prompt"}},
        "checks": [
            {"id": "gen", "uses": "performance.generation", "with": {"model": "candidate", "dataset": "prompts"}}
        ],
    }


def _store_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "cache" / "generations.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sampled_generations_of_a_local_lm_equal_the_local_ones(tmp_path: Path) -> None:
    from latency_support import build_tiny_lm, write_prompts

    build_tiny_lm(tmp_path / "lm")
    write_prompts(tmp_path / "prompts.jsonl")
    model = {
        "loader": "transformers",
        "path": "lm",
        "options": {"device": "cpu"},
        "generation": {"temperature": 0.9, "max_new_tokens": 6, "samples": 3},
    }
    suite = _generation_suite(model)
    local = _session(tmp_path, suite, out="local")
    remote = _session(tmp_path, suite, _ray(batch_size=4), out="ray")  # 6 prompts x 3 samples: 5 batches
    want = _ctx(local).generate("candidate", "prompts")
    got = _ctx(remote).generate("candidate", "prompts")
    assert got.texts == want.texts
    assert any(len(set(row)) > 1 for row in want.texts)  # the samples' seeds differ: the texts do
    assert (got.prompt_tokens, got.output_tokens, got.token_unit) == (want.prompt_tokens, want.output_tokens, "tokens")
    assert _store_lines(tmp_path / "ray") == _store_lines(tmp_path / "local")  # same records, same order
    assert remote.cache.stats() == local.cache.stats()
    again = _ctx(remote).generate("candidate", "prompts")  # served by the run's store: no second pass
    assert again.cache_hits == 18 and again.texts == want.texts


class _Refuses:
    """A backend that must not be asked: everything is in the cache."""

    def predict(self, handle: Any, inputs: Any, method: str) -> Any:
        raise AssertionError("predict asked")

    def generate(self, handle: Any, requests: list[Any]) -> list[Any]:
        raise AssertionError(f"{len(requests)} prompts asked")


def test_an_http_endpoint_is_called_from_the_actors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.ray_actors import LatencyEndpoint

    pd.DataFrame({"prompt": [f"question number {i}" for i in range(12)]}).to_json(
        tmp_path / "prompts.jsonl", orient="records", lines=True
    )
    with LatencyEndpoint(latency_s=0.01) as endpoint:
        model = {
            "loader": "http",
            "options": {"base_url": endpoint.base_url, "api": "chat", "model": "m"},
            "generation": {"temperature": 0.5, "max_new_tokens": 4, "samples": 2},
        }
        suite = _generation_suite(model)
        want = _ctx(_session(tmp_path, suite, out="local")).generate("candidate", "prompts")
        served_locally = endpoint.requests
        got = _ctx(_session(tmp_path, suite, _ray(batch_size=5), out="ray")).generate("candidate", "prompts")
        assert endpoint.requests == 2 * served_locally == 48
    assert got.texts == want.texts and got.texts[3][0].startswith("3 ")
    assert got.output_tokens == want.output_tokens and got.prompt_tokens == want.prompt_tokens
    assert _store_lines(tmp_path / "ray") == _store_lines(tmp_path / "local")
    # --cache DIR: a later run with the store the actors filled sends nothing anywhere
    monkeypatch.setenv("LLMGUARD_CACHE", str(tmp_path / "ray" / "cache"))
    again = _ctx(_session(tmp_path, suite, _Refuses(), out="again")).generate("candidate", "prompts")
    assert again.cache_hits == 24 and again.texts == want.texts and again.output_tokens == want.output_tokens


def test_batch_sizes_and_gpus_follow_the_model_entry() -> None:
    from llmguard_ops.suite import ModelSpec

    backend = _ray(actors=4)
    plain = ModelSpec(loader="sklearn", path="m.joblib")
    assert backend.batch_size_for(plain, "predict", 100_000) == 1024
    assert backend.batch_size_for(plain, "predict", 1000) == 63  # about four batches per actor
    assert backend.batch_size_for(plain, "predict", 10) == 1
    assert (
        backend.batch_size_for(plain, "generate", 10_000) == 64 and backend.batch_size_for(plain, "generate", 100) == 7
    )
    own = ModelSpec(loader="transformers", path="lm", options={"batch_size": 16})
    assert backend.batch_size_for(own, "generate", 100) == 16 == _ray(batch_size=2).batch_size_for(own, "predict", 5)
    assert backend.gpus_for(own, cluster_gpus=0) == 0 and backend.gpus_for(own, cluster_gpus=2) == 1
    assert backend.gpus_for(ModelSpec(loader="torch", path="m.pt", options={"device": "cuda:0"}), 0) == 1
    assert backend.gpus_for(plain, cluster_gpus=2) == 0
    assert backend.gpus_for(ModelSpec(loader="transformers", path="lm", options={"device": "cpu"}), 2) == 0
    with pytest.raises(ValueError, match="actors"):
        _ray(actors=0)


@pytest.mark.skipif(_cuda(), reason="needs a machine without a GPU")
def test_a_model_that_wants_a_gpu_on_a_cluster_without_one_is_refused_not_left_waiting(tmp_path: Path) -> None:
    from llmguard_ops import ArtifactError

    suite = _tabular(tmp_path, n=20)
    suite["models"]["candidate"]["options"] = {"device": "cuda"}
    ctx = _ctx(_session(tmp_path, suite, _ray()))
    with pytest.raises(ArtifactError, match=r"wants 1 GPU per actor .*the Ray cluster has 0"):
        ctx.predict("candidate", "current")


GPU_PROBE = """
import os


class Probe:
    '''Answers with the devices its process sees.'''

    input_kind = "text"

    def generate(self, prompts, **settings):
        import torch

        seen = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return [f"{seen}|{torch.cuda.is_available()}" for _ in prompts]


def make():
    return Probe()
"""


@pytest.mark.cuda
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device (none on this machine)")
def test_a_model_that_wants_cuda_runs_on_gpu_actors_with_local_results(tmp_path: Path) -> None:
    from latency_support import build_tiny_lm, write_prompts

    write_prompts(tmp_path / "prompts.jsonl")
    (tmp_path / "probe.py").write_text(textwrap.dedent(GPU_PROBE), encoding="utf-8")
    probe = {"loader": "python", "path": "probe.py:make", "options": {"device": "cuda"}}
    seen = _ctx(_session(tmp_path, _generation_suite(probe), _ray(num_cpus=1), out="probe")).generate(
        "candidate", "prompts"
    )
    assert all(t.split("|")[0] != "" and t.endswith("|True") for t in seen.first()), seen.first()

    build_tiny_lm(tmp_path / "lm")  # device auto: cuda here and on the actors
    model = {"loader": "transformers", "path": "lm", "generation": {"temperature": 0.9, "max_new_tokens": 6}}
    want = _ctx(_session(tmp_path, _generation_suite(model), out="local")).generate("candidate", "prompts")
    got = _ctx(_session(tmp_path, _generation_suite(model), _ray(num_cpus=1), out="ray")).generate(
        "candidate", "prompts"
    )
    assert got.texts == want.texts and got.output_tokens == want.output_tokens

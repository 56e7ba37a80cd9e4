"""The Ray executor on a real local Ray: same results as local, placement, fail closed.

One Ray for the whole session (``tests.ray_support.ray_cluster``); the multi-node test adds a
second simulated node for its duration. Every faulty check of the probe suite runs in
one run, so that killing, hanging and unschedulable requests cost one Ray round.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from tests.ray_support import PROBES, ray_cluster, two_nodes, write_suite

from llmguard_ops import Status, run, verify_attestation_file

pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")  # under --dist loadgroup, one worker holds the one Ray

__all__ = ["ray_cluster", "two_nodes"]  # fixtures, used by name

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "suites" / "demo" / "suite.yaml"
# the demo's checks and gates with fewer resamples and requests: a fraction of the time
FAST = [
    *(f"checks.{c}.with.n_resamples=30" for c in ("quality", "calibration", "vs-champion")),
    "checks.latency.with.requests=120",
    "checks.latency.with.duration_s=30",  # 120 requests end it first, even on a loaded machine
    "checks.explain.with.n_resamples=20",
    "checks.explain.with.max_samples=60",
    "checks.explain.with.background=20",
]


@pytest.mark.slow
# shap's import calls matplotlib's Colormap.set_bad/over/under, which matplotlib deprecates;
# not ours to fix, and the Ray workers (no pytest filters) would not see it as an error
@pytest.mark.filterwarnings("ignore:The set_.* function will be deprecated:PendingDeprecationWarning")
def test_the_demo_suite_decides_and_measures_the_same_on_ray(
    ray_cluster: Any, demo_models: Path, tmp_path: Path
) -> None:
    local = run(DEMO, tmp_path / "local", overrides=FAST).report
    on_ray = run(DEMO, tmp_path / "ray", overrides=FAST, executor="ray").report
    assert on_ray.decision.decision is local.decision.decision
    assert on_ray.decision.reasons == local.decision.reasons
    assert [c.id for c in on_ray.checks] == [c.id for c in local.checks]
    for here, there in zip(local.checks, on_ray.checks, strict=True):
        assert there.status is here.status, there.id
        assert there.error is None, there.error
        if there.uses.startswith("latency."):  # timings (and a process's memory) are not reproducible
            assert set(there.metrics) == set(here.metrics)
            continue
        assert set(there.metrics) == set(here.metrics), there.id
        for name, metric in here.metrics.items():
            other = there.metrics[name]
            assert other.value == pytest.approx(metric.value, abs=1e-12), (there.id, name)
            for bound in ("lower", "upper"):
                if getattr(metric, bound) is not None:
                    assert getattr(other, bound) == pytest.approx(getattr(metric, bound), abs=1e-12)
        assert there.artifacts == here.artifacts
        for path in there.artifacts.values():
            assert (tmp_path / "ray" / path).is_file()
        assert there.placement is not None and here.placement is None
    assert local.executor == {"name": "local"}
    assert on_ray.executor is not None and on_ray.executor["name"] == "ray"
    assert on_ray.executor["nodes"] == 1 and on_ray.executor["cpus"] == 2
    latency = on_ray.check("latency")
    assert latency.placement is not None and latency.placement["assigned"]["CPU"] == 2  # the whole node


def test_checks_are_placed_on_nodes_by_their_resources(two_nodes: Any, tmp_path: Path) -> None:
    suite = write_suite(
        tmp_path,
        "  - {id: gpu, uses: probe.gpu}\n"
        "  - {id: wide, uses: probe.where, resources: {cpus: 2}}\n"
        "  - {id: slot, uses: probe.where, resources: {cpus: 0.5, custom: {accelerator_slot: 1}}}\n"
        "  - {id: timing, uses: timing.probe}\n",
    )
    report = run(suite, tmp_path / "out", objects=PROBES, executor="ray").report
    assert [c.status for c in report.checks] == [Status.PASS] * 4, [c.error for c in report.checks]
    cluster = report.executor
    assert cluster is not None and cluster["nodes"] == 2 and cluster["gpus"] == 1 and cluster["cpus"] == 3
    second = next(n["node_id"] for n in cluster["node_list"] if n["gpus"] == 1)
    head = next(n["node_id"] for n in cluster["node_list"] if n["gpus"] == 0)
    where = {c.id: c.placement for c in report.checks}
    assert all(p is not None for p in where.values())
    assert where["gpu"]["node_id"] == second and where["gpu"]["assigned"].get("GPU") == 1  # type: ignore[index]
    assert report.check("gpu").details["cuda_visible_devices"] == "0"  # Ray handed it the device
    assert where["slot"]["node_id"] == second  # type: ignore[index]
    assert where["wide"]["node_id"] == head  # type: ignore[index]
    assert where["timing"]["node_id"] == head  # type: ignore[index]  # the node with the most CPUs
    assert where["timing"]["assigned"]["CPU"] == 2 and where["timing"]["requested"]["exclusive_node"] == head  # type: ignore[index]
    assert (tmp_path / "out" / "artifacts" / "gpu" / "where.txt").read_text().startswith("pid ")


@pytest.fixture(scope="module")
def faulty(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """One run of probes that die, hang or ask for too much, beside one that works."""
    folder = tmp_path_factory.mktemp("faulty")
    suite = write_suite(
        folder,
        "  - {id: killed, uses: probe.where, with: {how: sigkill}}\n"
        "  - {id: exits, uses: probe.where, with: {how: exit}}\n"
        "  - {id: hangs, uses: probe.where, with: {how: hang}, timeout: 2}\n"
        "  - {id: greedy, uses: probe.where, resources: {gpus: 4}}\n"
        "  - {id: huge, uses: probe.where, resources: {memory: 64TiB}}\n"
        "  - {id: fine, uses: probe.where}\n",
    )
    from llmguard_ops.evidence.keys import generate

    private, public, _ = generate(folder / "keys")
    outcome = run(suite, folder / "out", objects=PROBES, executor="ray", key=private)
    return outcome, public


def test_a_killed_worker_is_an_error_of_its_check_and_the_report_is_complete(faulty: tuple[Any, Path]) -> None:
    outcome, public = faulty
    report, out = outcome.report, outcome.out_dir
    for check_id in ("killed", "exits"):
        result = report.check(check_id)
        assert result.status is Status.ERROR
        assert result.error.type == "WorkerDied", result.error
    assert report.check("fine").status is Status.PASS
    assert report.decision.decision.value == "BLOCK"
    written = json.loads((out / "report.json").read_text())
    assert [c["id"] for c in written["checks"]] == ["killed", "exits", "hangs", "greedy", "huge", "fine"]
    assert written["executor"]["name"] == "ray"
    assert "Checks ran on Ray 2." in (out / "summary.md").read_text() and "2 CPUs" in (out / "summary.md").read_text()
    assert report.signed
    statement = verify_attestation_file(out / "attestation.dsse.json", public)
    assert statement.run_id == report.run_id and statement.decision == "BLOCK"


def test_a_hang_past_its_timeout_is_a_timeout_error(faulty: tuple[Any, Path]) -> None:
    result = faulty[0].report.check("hangs")
    assert result.status is Status.ERROR
    assert result.error.type == "Timeout" and "2s" in result.error.message
    pid = result.placement["pid"]  # the worker replied, then left with the abandoned thread
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the worker {pid} that timed out a check is still alive")


def test_an_unschedulable_request_is_an_error_naming_the_resource(faulty: tuple[Any, Path]) -> None:
    report = faulty[0].report
    greedy, huge = report.check("greedy"), report.check("huge")
    assert greedy.status is Status.ERROR and greedy.error.type == "Unschedulable"
    assert "requests 4 GPU," in greedy.error.message and "most on one node: 0 GPU)" in greedy.error.message
    assert huge.error.type == "Unschedulable" and "requests 6.55e+04 GiB of memory" in huge.error.message


@pytest.mark.slow
def test_the_cli_joins_a_running_cluster_with_ray_address(
    ray_cluster: Any, demo_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmguard_ops.cli import main

    core = REPO / "suites" / "demo" / "core.yaml"
    fast = [a for c in ("quality", "calibration", "vs-champion") for a in ("--set", f"checks.{c}.with.n_resamples=30")]
    out = tmp_path / "out"
    argv = ["run", str(core), "--out", str(out), "-q", "--no-audit-log", *fast]
    address = ray_cluster.get_runtime_context().gcs_address  # the session's cluster, joined by the run's child
    code = main([*argv, "--executor", "ray", "--ray-address", address])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["decision"]["decision"] == "PROMOTE"
    assert report["executor"]["name"] == "ray" and report["executor"]["address"] == address
    assert {c["placement"]["node_id"] for c in report["checks"]} <= {
        n["node_id"] for n in report["executor"]["node_list"]
    }


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_inference_actors_give_the_same_metrics_with_either_executor(
    executor: str, ray_cluster: Any, demo_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmguard_ops.executors.ray_data import RayInference

    pooled_calls: list[str] = []
    original = RayInference.predict

    def counted(self: RayInference, handle: Any, inputs: Any, method: str) -> Any:
        pooled_calls.append(method)
        return original(self, handle, inputs, method)

    monkeypatch.setattr(RayInference, "predict", counted)  # seen where the checks run in this process
    core = REPO / "suites" / "demo" / "core.yaml"
    fast = [f"checks.{c}.with.n_resamples=30" for c in ("quality", "calibration", "vs-champion")]
    plain = run(core, tmp_path / "plain", overrides=fast).report
    # one check on Ray: its task holds one CPU of the two, the actor pool the other
    only = ["quality"] if executor == "ray" else None
    pooled = run(core, tmp_path / "pooled", overrides=fast, executor=executor, inference_actors=1, only=only).report
    assert pooled.executor is not None and pooled.executor["inference"] == {"backend": "ray_data", "actors": 1}
    assert plain.executor is not None and "inference" not in plain.executor
    for there in pooled.checks:
        here = plain.check(there.id)
        assert there.error is None, there.error
        assert there.status is here.status
        for name, metric in here.metrics.items():
            assert there.metrics[name].value == pytest.approx(metric.value, abs=1e-12), (there.id, name)
    if executor == "local":
        assert pooled_calls, "the checks' predictions did not go through the actor pool"

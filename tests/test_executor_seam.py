"""The executor seam without a cluster: registration, choice, errors, resources.

An executor is a plugin contribution like a check: the builtin plugin registers
``local`` and ``ray`` (importing nothing heavy), a third party can add its own, a suite
chooses one with ``policy.executor`` and the CLI overrides it with ``--executor``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import BASE_SUITE

from llmguard_ops import ExecutorDefinition, Resources, SuiteError, hookimpl, run
from llmguard_ops.cli import main

QUALITY = """\
  - id: quality
    uses: performance.classification
    with: {model: candidate, dataset: current, n_resamples: 30}
    gate: {accuracy: {min: 0.5}}
"""


def test_builtin_executors_are_registered_without_importing_ray() -> None:
    code = (
        "import sys\n"
        "from llmguard_ops.plugins import get_plugin_manager\n"
        "reg = get_plugin_manager(entry_points=False).registry()\n"
        "print(sorted(reg.executors), reg.executors['ray'].plugin, 'ray' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["['local',", "'ray']", "llmguard_ops.builtin", "False"]


def test_the_local_executor_is_the_default_and_records_itself(write_suite: Callable[[str], Path]) -> None:
    path = write_suite(BASE_SUITE + QUALITY)
    default = run(path, "out-default", write=False).report
    local = run(path, "out-local", write=False, executor="local").report
    assert default.executor == local.executor == {"name": "local"}
    assert default.check("quality").metrics == local.check("quality").metrics
    assert default.check("quality").placement is None


def test_an_unknown_policy_executor_is_a_located_suite_error(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_suite(BASE_SUITE + QUALITY + "policy: {executor: rai}\n")
    code = main(["validate", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err == (
        f"{path}:13:20 policy.executor: unknown executor 'rai' (did you mean 'ray'?); installed: local, ray"
    ), err


def test_an_unknown_cli_executor_exits_2_with_one_line(
    write_suite: Callable[[str], Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_suite(BASE_SUITE + QUALITY)
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "-q", "--executor", "dask"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines()[-1] == "--executor: unknown executor 'dask'; installed: local, ray"
    assert "Traceback" not in err


def test_an_unreachable_cluster_exits_2_with_one_redacted_line(
    write_suite: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_CLUSTER_TOKEN", "hunter2-cluster-secret")
    path = write_suite(BASE_SUITE + QUALITY)
    address = f"ray://hunter2-cluster-secret@127.0.0.1:{port}"
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "-q", "--executor", "ray", "--ray-address", address])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "hunter2" not in err and "Traceback" not in err
    assert [line for line in err.splitlines() if not line.startswith("warning: ")] == [
        f"--ray-address ray://[REDACTED]@127.0.0.1:{port}: the Ray cluster is unreachable (Connection refused)"
    ]


class _Recording:
    """An executor of a plugin: runs each check locally and says it did."""

    ran: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {"name": "recording", "workers": 1}

    def run(self, session: Any, configs: Sequence[Any], progress: Any) -> list[Any]:
        self.ran.extend(c.id for c in configs)
        return [session.run_check(c) for c in configs]

    def close(self) -> None:
        self.ran.append("closed")


class _RecordingPlugin:
    @hookimpl
    def llmguard_register_executors(self, register: Callable[[ExecutorDefinition], None]) -> None:
        def open_recording(options: Mapping[str, Any]) -> _Recording:
            return _Recording()

        register(ExecutorDefinition("recording", open_recording, "records the checks it ran"))


def test_a_plugin_executor_runs_the_checks_chosen_by_the_suite(write_suite: Callable[[str], Path]) -> None:
    path = write_suite(BASE_SUITE + QUALITY + "policy: {executor: recording}\n")
    _Recording.ran = []
    report = run(path, "out", write=False, objects=[("recording", _RecordingPlugin())]).report
    assert _Recording.ran == ["quality", "closed"]
    assert report.executor == {"name": "recording", "workers": 1}
    assert report.check("quality").status.value == "pass"


@pytest.mark.parametrize(
    ("written", "expected"),
    [("512MiB", 512 * 2**20), ("2GB", 2 * 10**9), ("1.5Gi", int(1.5 * 2**30)), (4096, 4096)],
)
def test_memory_is_read_in_bytes_or_with_a_unit(written: Any, expected: int) -> None:
    from llmguard_ops.suite import ResourceSpec

    assert ResourceSpec.model_validate({"memory": written}).memory == expected


def test_bad_resources_are_located(write_suite: Callable[[str], Path]) -> None:
    path = write_suite(BASE_SUITE + QUALITY + "    resources: {memory: lots, gpus: -1}\n")
    with pytest.raises(SuiteError) as caught:
        run(path, "out", write=False)
    text = str(caught.value)
    assert (
        f"{path}:13:25 checks[0].resources.memory" in text and "checks[0].resources.memory" in text and "512MiB" in text
    )
    assert "checks[0].resources.gpus" in text


def test_suite_resources_override_the_checks_defaults_field_by_field() -> None:
    default = Resources(cpus=2, gpus=1, custom={"a": 1})
    merged = default.merged(Resources(gpus=0.5, memory=10, custom={"b": 2}))
    assert merged == Resources(cpus=2, gpus=0.5, memory=10, custom={"a": 1, "b": 2})
    assert merged.describe() == {"cpus": 2, "gpus": 0.5, "memory": 10, "custom": {"a": 1, "b": 2}}
    assert default.merged(None) is default

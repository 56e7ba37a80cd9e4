"""One local Ray cluster per test session (2 CPUs, shut down at the end), and Ray probes.

Use it as a fixture (``from tests.ray_support import ray_cluster``): it yields the ``ray``
module connected to that cluster; a test that asks for it runs its Ray work there.
Starting one costs seconds, so tests share it. The cluster is a
``ray.cluster_utils.Cluster`` whose head has the 2 CPUs, so that ``two_nodes`` can add a
second node (1 CPU, 1 simulated GPU, a custom resource) for one test and take it away
after: a single process never holds two Ray connections.

The probe checks (``ProbePlugin``) report where they ran and misbehave on request: a
worker that SIGKILLs itself or calls ``os._exit``, a hang past the timeout. This module
travels to Ray workers by value (cloudpickle), as a test file is not importable there.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from llmguard_ops import CheckContext, CheckDefinition, CheckOutput, MetricSpec, Resources, hookimpl

HEAD_CPUS = 2
#: the second node of ``two_nodes``: one CPU, one GPU (declared; no CUDA needed) and
#: a custom resource only it has
SECOND_NODE: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1, "resources": {"accelerator_slot": 1}}


class ProbeParams(BaseModel):
    """``how``: ``ok``, ``sigkill``, ``exit`` or ``hang``; ``spin``: CPU-bound iterations."""

    how: str = "ok"
    spin: int = 0


def probe(ctx: CheckContext, params: ProbeParams) -> CheckOutput:
    """Report the process and devices it ran on, or fail in the way asked."""
    if params.how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if params.how == "exit":
        os._exit(3)
    if params.how == "hang":
        time.sleep(3600)
    total = 0
    for i in range(params.spin):
        total = (total + i * i) % 1_000_003
    out = CheckOutput()
    out.add("ran", 1.0)
    out.add("spin_total", float(total))
    out.details.update(pid=os.getpid(), cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    ctx.write_artifact("where.txt", f"pid {os.getpid()}\n")
    return out


class ProbePlugin:
    """``probe.where`` (1 CPU by default), ``probe.gpu`` (1 GPU by default) and
    ``timing.probe`` (declares ``Resources(exclusive=True)``: pinned to one node, alone there)."""

    @hookimpl
    def llmguard_register_checks(self, register: Callable[[CheckDefinition], None]) -> None:
        metrics = (MetricSpec("ran"), MetricSpec("spin_total"))
        register(CheckDefinition("probe.where", probe, ProbeParams, metrics, "where it ran"))
        register(CheckDefinition("probe.gpu", probe, ProbeParams, metrics, "needs a GPU", resources=Resources(gpus=1)))
        timing = Resources(exclusive=True)
        register(CheckDefinition("timing.probe", probe, ProbeParams, metrics, "times something", resources=timing))


PROBES = [("ray-probes", ProbePlugin())]


def write_suite(folder: Path, checks: str, name: str = "suite.yaml") -> Path:
    """A suite of probe checks (no models, no datasets) in ``folder``."""
    path = folder / name
    path.write_text(f"apiVersion: llmguard/v1\nname: ray-probes\nchecks:\n{checks}", encoding="utf-8")
    return path


_CLUSTER: list[Any] = []  # the session's Cluster, when this module started it


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The ``ray`` module with a local cluster of two CPUs running."""
    ray = pytest.importorskip("ray")
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the probes travel by value
    started = not ray.is_initialized()
    if started:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": HEAD_CPUS, "include_dashboard": False})
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        _CLUSTER.append(cluster)
    yield ray
    if started:
        ray.shutdown()
        _CLUSTER.pop().shutdown()


@pytest.fixture
def two_nodes(ray_cluster: Any) -> Iterator[Any]:
    """The session's Ray with a second node (``SECOND_NODE``) for one test; yields the Cluster."""
    if not _CLUSTER:
        pytest.skip("Ray was started outside the test session's cluster: no node can be added")
    cluster = _CLUSTER[0]
    node = cluster.add_node(**SECOND_NODE)
    cluster.wait_for_nodes()
    yield cluster
    cluster.remove_node(node)

"""One local Ray cluster for the whole test session (2 CPUs, no dashboard)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """``ray`` connected to a local 2-CPU cluster, shut down when the session ends."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        # address="local": a cluster of our own, even when another process on this machine runs one
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()

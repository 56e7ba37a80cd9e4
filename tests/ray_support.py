"""One local Ray cluster per test session: ``ray.init(num_cpus=2)``, shut down at the end.

Use it as a fixture (``from tests.ray_support import ray_cluster``); a test that asks for
it runs its Ray work on that cluster. Starting one costs seconds, so tests share it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The ``ray`` module with a local cluster of two CPUs running."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()

"""Inference on Ray: a run's predictions and generations computed by a Ray Data actor pool.

:class:`RayInference` is an inference backend (:class:`~llmguard_ops.context.InferenceBackend`):
set it on a run's prediction cache and every ``ctx.predict`` / ``ctx.generate`` /
``ctx.chat`` sends its model calls to ``actors`` Ray actors through Ray Data
``map_batches``, instead of calling the model in the run's own process::

    from llmguard_ops.executors.ray_data import RayInference

    session.cache.backend = RayInference(actors=4, batch_size=64, address="auto")

What moves and what stays:

- Each actor loads the model once, from the suite's model entry (its loader, path and
  options, relative to the suite's folder), never from a pickled live object; before
  loading it digests what it is about to load and refuses to serve a model whose sha256
  differs from the run's (a tampered or different file on the worker's node).
- An actor asks for a GPU (``num_gpus``) when the model wants CUDA (``options.device:
  cuda``, or ``auto`` for torch/transformers models on a cluster with GPUs); otherwise it
  is a CPU actor.
- Rows travel once, through the object store; each batch is a contiguous range of rows
  (``options.batch_size`` of the model entry, else the backend's ``batch_size``, else a
  default), and the answers come back in row order.
- The run keeps the caches, the seeds, the generation store (``--cache DIR``) and the
  token counts: a generation's seed and cache key are computed by the run exactly as
  without a backend, so the texts, the store's records and the counts are the same.

Ray is imported only when a backend computes something.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..errors import ArtifactError

if TYPE_CHECKING:
    from ..context import ModelHandle
    from ..generation import Conversation
    from ..registry import ModelLoader
    from ..suite import ModelSpec

DEFAULT_PREDICT_BATCH = 1024
"""Most rows per batch for predictions when neither the model entry nor the backend says."""

DEFAULT_GENERATE_BATCH = 64
"""Most prompts per batch for generations when neither the model entry nor the backend says."""

BATCHES_PER_ACTOR = 4
"""By default, items are cut into about this many batches per actor: enough that a fast
actor takes over a slow one's share, few enough that each batch's round trip stays small."""

_GPU_LOADERS = frozenset({"torch", "transformers"})


class RayInference:
    """Compute predictions and generations on a pool of Ray actors (Ray Data ``map_batches``).

    :param actors: actors in the pool (each loads the model once per pass over a dataset).
    :param batch_size: rows (predictions) or prompts (generations) per batch; a model
        entry's ``options.batch_size`` wins; by default about four batches per actor, at
        most 1024 rows or 64 prompts each.
    :param address: the cluster to join (``"auto"``, ``ray://host:10001``, ``"local"`` for
        a new one of this process's own); ``None`` keeps the cluster this process is
        connected to, or does what ``ray.init()`` does.
    :param num_cpus: CPUs each actor reserves (an I/O-bound endpoint model needs little).
    :param num_gpus: GPUs each actor reserves; by default 1 when the model wants CUDA, else 0.
    """

    def __init__(
        self,
        actors: int = 2,
        batch_size: int | None = None,
        address: str | None = None,
        *,
        num_cpus: float = 1.0,
        num_gpus: float | None = None,
    ) -> None:
        if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
            raise ValueError(f"actors must be a positive integer, got {actors!r}")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if num_cpus < 0 or (num_gpus is not None and num_gpus < 0):
            raise ValueError("num_cpus and num_gpus must not be negative")
        self.actors = actors
        self.batch_size = batch_size
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus

    def __repr__(self) -> str:
        return f"RayInference(actors={self.actors}, batch_size={self.batch_size}, address={self.address!r})"

    # -- the backend's two entries ---------------------------------------------------------

    def predict(self, handle: ModelHandle, inputs: Any, method: str) -> np.ndarray:
        """``model.<method>(inputs)`` computed batch by batch on the actors, rows in order."""
        n = len(inputs)
        if n == 0:  # nothing to shard: the model's own answer to no rows, as without a backend
            return np.asarray(getattr(handle.model.obj, method)(inputs))
        parts = self._run(handle, "predict", inputs, n, method)
        return np.concatenate([np.asarray(p) for p in parts])

    def generate(
        self, handle: ModelHandle, requests: list[tuple[Conversation, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """One answer record per ``(conversation, settings)``, in the order asked."""
        if not requests:
            return []
        parts = self._run(handle, "generate", requests, len(requests), "")
        return [answer for part in parts for answer in part]

    # -- sizing and placement ---------------------------------------------------------------

    def batch_size_for(self, spec: ModelSpec, kind: str, n: int) -> int:
        """Rows or prompts per batch for ``n`` items of this model (see the class docstring)."""
        own = spec.options.get("batch_size")
        if isinstance(own, int) and not isinstance(own, bool) and own > 0:
            return own
        if self.batch_size is not None:
            return self.batch_size
        most = DEFAULT_PREDICT_BATCH if kind == "predict" else DEFAULT_GENERATE_BATCH
        return max(1, min(most, math.ceil(n / (BATCHES_PER_ACTOR * self.actors))))

    def gpus_for(self, spec: ModelSpec, cluster_gpus: float) -> float:
        """GPUs per actor: the explicit ``num_gpus``, else 1 when the model wants CUDA."""
        if self.num_gpus is not None:
            return self.num_gpus
        device = spec.options.get("device")
        if isinstance(device, str) and device.startswith("cuda"):
            return 1.0
        if device in (None, "auto") and spec.loader in _GPU_LOADERS and cluster_gpus > 0:
            return 1.0
        return 0.0

    # -- one pass over the items --------------------------------------------------------------

    def _connect(self) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)

    def _run(self, handle: ModelHandle, kind: str, payload: Any, n: int, method: str) -> list[Any]:
        import ray
        import ray.data

        self._connect()

        model = handle.model
        loader = handle.loader or _registered_loader(model.loader)
        size = self.batch_size_for(model.spec, kind, n)
        starts = list(range(0, n, size))
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]  # unannotated in Ray
        gpus = self.gpus_for(model.spec, float(resources.get("GPU", 0)))
        if gpus > float(resources.get("GPU", 0)):  # the actors would wait for a device forever
            raise ArtifactError(
                f"model '{model.name}' wants {gpus:g} GPU per actor (options.device: "
                f"{model.spec.options.get('device', 'auto')}), but the Ray cluster has "
                f"{resources.get('GPU', 0):g}; use a cluster with GPUs or run the model on CPU"
            )
        ref = ray.put(payload)
        source = ray.data.from_numpy([np.arange(s, min(s + size, n), dtype=np.int64) for s in starts])
        source.context.enable_progress_bars = False
        source.context.max_consecutive_actor_init_deaths = 0  # an actor that cannot load is the answer
        with warnings.catch_warnings():  # max_restarts has no named parameter in Ray 2.60
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            mapped = source.map_batches(
                cast(Any, _ModelActor),  # a callable class: Ray's stubs want its protocol type
                batch_size=size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=min(self.actors, len(starts))),
                num_cpus=self.num_cpus,
                num_gpus=gpus,
                fn_constructor_kwargs={
                    "name": model.name,
                    "spec": model.spec,
                    "base_dir": str(handle.base_dir),
                    "loader": loader,
                    "sha256": model.sha256,
                },
                fn_kwargs={"payload": [ref], "kind": kind, "method": method},
                max_restarts=0,  # a dead actor fails the pass (an ERROR of the check), never a retry loop
            )
        try:
            rows = mapped.take_all()
        except Exception as exc:
            raise _failure(model.name, exc) from None
        rows.sort(key=lambda r: int(r["start"]))
        got = [int(r["start"]) for r in rows]
        if got != starts:
            raise ArtifactError(f"model '{model.name}': Ray answered batches {got[:5]}..., expected {starts[:5]}...")
        return [pickle.loads(r["result"]) for r in rows]  # written by our own actors just now


def _registered_loader(name: str) -> ModelLoader:
    from ..plugins import get_plugin_manager

    loaders = get_plugin_manager().registry().model_loaders
    if name not in loaders:
        raise ArtifactError(f"no model loader '{name}' is installed for the Ray actors")
    return loaders[name]


def _failure(model: str, exc: BaseException) -> ArtifactError:
    """One line naming the model and the root cause of a failed pass."""
    import ray.exceptions

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ray.exceptions.ActorDiedError | ray.exceptions.ActorUnavailableError):
            if getattr(seen, "actor_init_failed", False):  # raised while digesting or loading the model
                return ArtifactError(f"model '{model}' on a Ray actor: {_root(seen)}")
            return ArtifactError(f"model '{model}': a Ray inference actor died: {_first_line(seen)}")
        seen = seen.__cause__ or seen.__context__
    return ArtifactError(f"model '{model}' on a Ray actor: {_root(exc)}")


_RAISED = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _root(exc: BaseException) -> str:
    """The first exception a Ray traceback text shows (the innermost cause), as one line."""
    text = _ANSI.sub("", str(exc))
    for line in text.splitlines():
        match = _RAISED.match(line.strip())
        if match and not match.group(1).startswith("ray.") and match.group(1) != "UserCodeException":
            name, message = match.groups()
            return message if name.endswith("ArtifactError") else f"{name.rsplit('.', 1)[-1]}: {message}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc))
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)


class _ModelActor:
    """One actor of the pool: digests and loads the model once, then answers batches."""

    def __init__(self, name: str, spec: ModelSpec, base_dir: str, loader: ModelLoader, sha256: str) -> None:
        from ..artifacts import model_digest

        self.name = name
        base = Path(base_dir)
        digest, _ = model_digest(loader, spec, base)
        if digest != sha256:
            raise ArtifactError(
                f"what this worker would load ({spec.path}) digests to sha256 {digest}, "
                f"not the run's {sha256}; every node must see the same model"
            )
        self.obj = loader.load(spec, base)
        self._payload: tuple[Any, Any] | None = None

    def _items(self, ref: Any) -> Any:
        import ray

        if self._payload is None or self._payload[0] != ref:
            self._payload = (ref, ray.get(ref))
        return self._payload[1]

    def __call__(self, batch: dict[str, np.ndarray], *, payload: list[Any], kind: str, method: str) -> dict[str, Any]:
        from ..generation import call_model

        ids = batch["data"]
        start, stop = int(ids[0]), int(ids[-1]) + 1
        items = self._items(payload[0])
        if kind == "predict":
            part = getattr(items, "iloc", items)[start:stop]
            result: Any = np.asarray(getattr(self.obj, method)(part))
        else:
            result = []
            chunk = items[start:stop]
            i = 0
            while i < len(chunk):  # one model call per run of equal settings (one sample index)
                settings = chunk[i][1]
                j = i
                while j < len(chunk) and chunk[j][1] == settings:
                    j += 1
                result += call_model(self.obj, [c for c, _ in chunk[i:j]], settings)
                i = j
        return {"start": np.array([start], dtype=np.int64), "result": np.array([pickle.dumps(result)], dtype=object)}


__all__ = ["BATCHES_PER_ACTOR", "DEFAULT_GENERATE_BATCH", "DEFAULT_PREDICT_BATCH", "RayInference"]

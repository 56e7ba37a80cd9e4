"""What a check sees of a run: models, datasets, cached predictions, seed, levels."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from .errors import ArtifactError
from .report import atomic_write

if TYPE_CHECKING:
    import pandas as pd

    from .artifacts import LoadedDataset, LoadedModel
    from .generation import Bulk, Conversation, Generations
    from .loading import LoadedSuite
    from .partitioned import PartitionMap
    from .registry import ModelLoader, Registry
    from .suite import CheckConfig, GateBound, PromptSpec

R = TypeVar("R")


@dataclass(frozen=True)
class ModelHandle:
    """What an inference backend needs to load a run's model again elsewhere.

    ``model`` is the driver's loaded model (its spec, loader name and sha256 digest: the
    backend's copy must digest the same), ``base_dir`` the suite's folder (relative paths
    start there) and ``loader`` the registered loader that loaded it (``None`` when the
    context has no registry: the backend looks it up by ``model.loader``).
    """

    model: LoadedModel
    base_dir: Path
    loader: ModelLoader | None = None


class InferenceBackend(Protocol):
    """Computes a run's model calls in bulk somewhere else (a Ray actor pool, say).

    Set on :attr:`PredictionCache.backend`; the cache, the seeds, the generation store
    and the token counts stay with the run, only the model calls move. Both methods
    answer in the order asked, one answer per item.
    """

    def predict(self, handle: ModelHandle, inputs: Any, method: str) -> np.ndarray:
        """``model.<method>(inputs)`` (a frame, an array or a list of texts), in row order."""
        ...

    def generate(
        self, handle: ModelHandle, requests: list[tuple[Conversation, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """One answer record per ``(conversation, settings)``, as :func:`~llmguard_ops.generation.call_model`."""
        ...


class PredictionCache:
    """Each (model, dataset, method) is computed at most once per run, whatever the checks.

    ``calls`` counts the real model calls, so tests (and the report) can show it.
    ``backend`` (an :class:`InferenceBackend`, ``None`` by default) computes predictions
    and generations in bulk elsewhere; without one every call runs here, in this process.
    """

    def __init__(self, backend: InferenceBackend | None = None) -> None:
        self._values: dict[tuple[str, str, str], Any] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.generation_store: Any = None  # a GenerationStore, opened on the first generation
        self.backend: InferenceBackend | None = backend

    def get(self, key: tuple[str, str, str], compute: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self.calls[key] += 1
                self._values[key] = compute()
            return self._values[key]

    def stats(self) -> dict[str, int]:
        return {"/".join(k): v for k, v in sorted(self.calls.items())}


def derive_seed(seed: int, *parts: str) -> int:
    """A stable 32-bit seed per (run seed, check id): independent streams, reproducible."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class ArtifactFile:
    """A file a check wrote with :meth:`CheckContext.write_artifact`: where, and its sha256."""

    path: Path
    sha256: str

    def __fspath__(self) -> str:
        return str(self.path)


@dataclass
class CheckContext:
    """The run as one check sees it.

    Checks read models and datasets through this object, never from disk, so every
    artifact is loaded and digested once and predictions are shared across checks.

    Public (see ``docs/plugin-api.md``): ``check_id``, ``seed``, ``artifact_dir``,
    ``base_dir``, ``default_confidence``, ``notes`` and the methods below. ``suite``,
    ``check``, ``models``, ``datasets``, ``cache`` and ``registry`` are the host's own
    objects (the suite and the check's configuration as copies); their shape may change
    between minor versions, so read them through the methods (``model``, ``dataset``,
    ``gate``, ``gates``, ``prompt``, ``suite_checks``, ``extensions``).
    """

    suite: LoadedSuite
    check: CheckConfig
    models: dict[str, LoadedModel]
    datasets: dict[str, LoadedDataset]
    cache: PredictionCache
    artifact_dir: Path
    seed: int
    default_confidence: float = 0.95
    notes: list[str] = field(default_factory=list)
    #: what the installed plugins provide (checks read ``registry.extensions`` from it)
    registry: Registry | None = None

    @property
    def check_id(self) -> str:
        """The id of the running check in the suite."""
        return self.check.id

    @property
    def base_dir(self) -> Path:
        """The suite file's folder: relative paths in a check's parameters start here."""
        return self.suite.base_dir

    def gate(self, metric: str) -> GateBound | None:
        """The suite's gate on ``metric`` for this check (a copy), or None when it is not gated."""
        bound = self.check.gate.get(metric)
        return None if bound is None else bound.model_copy(deep=True)

    @property
    def gates(self) -> dict[str, GateBound]:
        """Every gate of this check, metric name → bound (copies, in suite order)."""
        return {name: bound.model_copy(deep=True) for name, bound in self.check.gate.items()}

    def suite_checks(self) -> list[CheckConfig]:
        """Every check of the suite as written (``id``, ``uses``, ``with_``, ``gate``,
        ``severity``), as copies: for a check that reads another check's gates."""
        return [c.model_copy(deep=True) for c in self.suite.suite.checks]

    def extensions(self, kind: str) -> dict[str, Any]:
        """What plugins registered for one check family, by name (``"safety probe set"`` →
        name → item), or ``{}``: frozen items with ``name``, ``summary``, ``plugin`` and
        ``plugin_version``, registered through the family's own hook."""
        if self.registry is None:
            return {}
        return dict(self.registry.extensions.get(kind, {}))

    def prompt(self, model: str) -> PromptSpec | None:
        """The suite's prompt template attached to ``model`` (resolved by name), or None."""
        suite = self.suite.suite
        return suite.prompt_of(model) if model in suite.models else None

    def features(self, model: str, dataset: str) -> pd.DataFrame:
        """The columns of ``dataset`` that ``model`` is fed, as a DataFrame (every row).

        Which columns: :meth:`LoadedModel.feature_names` (the fitted model's own
        ``feature_names_in_``, else the dataset's ``features``, else every column that is
        neither target, text nor sensitive).
        """
        data = self.dataset(dataset)
        return data.frame[self.model(model).feature_names(data)]

    def write_artifact(self, name: str, data: bytes | str | Callable[[Path], object]) -> ArtifactFile:
        """Write ``artifact_dir/name`` atomically and return its path and sha256.

        ``data`` is the content (``str`` is written as UTF-8) or a callback that writes
        the file at the path it is given (``lambda p: fig.savefig(p)``; the path keeps
        ``name``'s suffix). Readers see the old file or the whole new one, never a part,
        and a callback that raises leaves nothing behind. ``name`` is relative and stays
        inside the artifact folder (``plots/roc.png`` is fine, ``../x`` is refused).
        Put the returned path into ``CheckOutput.artifacts`` to list it in the report.
        """
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise ValueError(f"artifact name {name!r} must be a relative path inside the check's artifact folder")
        target = self.artifact_dir / name
        if not callable(data):  # the bytes we hand to the host's one atomic writer are the digest's input
            payload = data.encode("utf-8") if isinstance(data, str) else data
            atomic_write(target, payload)
            return ArtifactFile(path=target, sha256=hashlib.sha256(payload).hexdigest())
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name_of_tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        os.close(fd)
        tmp = Path(name_of_tmp)
        try:
            data(tmp)  # a callback writes the file itself (a figure, a parquet file): keep its suffix
            with open(tmp, "rb") as fh:  # the digest of what is on disk, flushed before the rename
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return ArtifactFile(path=target, sha256=digest)

    def rng(self) -> np.random.Generator:
        """A fresh generator seeded for this check (same seed → same draws)."""
        return np.random.default_rng(self.seed)

    def model(self, name: str) -> LoadedModel:
        try:
            return self.models[name]
        except KeyError:
            raise ArtifactError(f"unknown model '{name}'") from None

    def dataset(self, name: str) -> LoadedDataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise ArtifactError(f"unknown dataset '{name}'") from None

    def is_partitioned(self, dataset: str) -> bool:
        """True when ``dataset`` is a folder of Parquet partitions (its ``frame`` is not loaded)."""
        from .partitioned import PartitionedDataset

        return isinstance(self.dataset(dataset), PartitionedDataset)

    def partition_map(
        self,
        dataset: str,
        fn: Callable[[pd.DataFrame], R],
        *,
        columns: list[str] | None = None,
        memory: int | None = None,
    ) -> PartitionMap[R]:
        """``fn(frame)`` on each partition of ``dataset`` (only ``columns``), results in
        partition order (``.values``), with what each task did (``.tasks``, ``.describe()``).

        Locally one partition after the other in this process; as one Ray task per
        partition, each with ``memory`` bytes (default: the dataset's ``task_memory_mb``),
        when Ray is initialised. ``fn`` must be picklable there (a module-level function
        or a ``functools.partial`` of one). An in-memory dataset is a single partition.
        Merge the values with the mergeable statistics (``Moments.merge_all`` ...).
        """
        from .partitioned import map_partitions

        return map_partitions(self.dataset(dataset), fn, columns, memory)

    def confidence(self, metric: str | None = None) -> float:
        """Level at which to compute the interval of ``metric``.

        The gate's ``confidence`` when the suite gates that metric with one, otherwise the
        policy's reporting level.
        """
        if metric is not None:
            bound = self.check.gate.get(metric)
            if bound is not None and bound.confidence is not None:
                return bound.confidence
        return self.default_confidence

    def gated_metrics(self) -> list[str]:
        return list(self.check.gate)

    def inputs(self, model: str, dataset: str) -> Any:
        return self.model(model).inputs(self.dataset(dataset))

    def predict(self, model: str, dataset: str, method: str = "predict") -> np.ndarray:
        """``model.<method>(inputs of dataset)``, computed once per run and shared."""
        loaded = self.model(model)
        data = self.dataset(dataset)

        def compute() -> np.ndarray:
            fn = getattr(loaded.obj, method, None)
            if fn is None:
                raise ArtifactError(f"model '{model}' ({type(loaded.obj).__name__}) has no {method}()")
            backend = self.cache.backend
            if backend is not None:
                return np.asarray(backend.predict(self._handle(loaded), loaded.inputs(data), method))
            return np.asarray(fn(loaded.inputs(data)))

        out: np.ndarray = self.cache.get((model, dataset, method), compute)
        return out

    def generate(
        self, model: str, dataset: str, *, samples: int | None = None, rows: list[int] | None = None
    ) -> Generations:
        """Generate text for the rows of ``dataset`` with ``model``'s prompt and settings.

        The one way a check asks a generative model for text: the suite's prompt template
        attached to the model is rendered per row (system prompt, ``{column}``
        placeholders, RAG context, few-shot turns, or the row's ``messages``), sent in the
        model's own shape (chat messages, chat template, or flattened text) with its
        generation config (``samples`` overrides how many independent draws per row), and
        every answer is cached on disk per run (``--cache DIR`` across runs) under a key of
        model digest, rendered prompt, config, seed and sample index. Returns
        :class:`~llmguard_ops.generation.Generations` (``texts[row][sample]``, token
        counts, the prompt and config used). See :mod:`llmguard_ops.generation`.
        """
        from . import generation as gen

        loaded = self.model(model)
        data = self.dataset(dataset)
        suite = self.suite.suite
        out = gen.generate(
            loaded,
            data,
            prompt=suite.prompt_of(model) if model in suite.models else None,
            config=loaded.spec.generation,
            store=self._generation_store(),
            run_seed=suite.seed,
            samples=samples,
            rows=rows,
            on_call=self._counter((model, dataset, "generate")),
            bulk=self._bulk(loaded),
        )
        self._note_all(out.warnings)
        return out

    def chat(
        self,
        model: str,
        conversations: list[list[dict[str, str]]],
        *,
        samples: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Generations:
        """Generate for ready OpenAI-shaped conversations (a judge's prompts, attack turns).

        Same model call, settings, seeds and cache as :meth:`generate`; the model's own
        prompt template is not applied (the conversations are already written).
        ``settings`` replaces some of the model's generation settings for this call (a
        check's own ``max_new_tokens``, say); they are validated like the suite's
        ``generation:`` and are part of the cache key.
        """
        from . import generation as gen

        loaded = self.model(model)
        out = gen.generate_conversations(
            loaded,
            conversations,
            config=gen.with_settings(loaded.spec.generation, settings),
            store=self._generation_store(),
            run_seed=self.suite.suite.seed,
            samples=samples,
            on_call=self._counter((model, "conversations", "chat")),
            bulk=self._bulk(loaded),
        )
        self._note_all(out.warnings)
        return out

    def _handle(self, loaded: LoadedModel) -> ModelHandle:
        loader = self.registry.model_loaders.get(loaded.loader) if self.registry is not None else None
        return ModelHandle(model=loaded, base_dir=self.base_dir, loader=loader)

    def _bulk(self, loaded: LoadedModel) -> Bulk | None:
        backend = self.cache.backend
        if backend is None:
            return None
        handle = self._handle(loaded)

        def bulk(requests: list[tuple[Conversation, dict[str, Any]]]) -> list[dict[str, Any]]:
            return backend.generate(handle, requests)

        return bulk

    def _generation_store(self) -> Any:
        from . import generation as gen

        with self.cache._guard:
            if self.cache.generation_store is None:
                self.cache.generation_store = gen.GenerationStore(gen.store_folder(self.artifact_dir.parent.parent))
            return self.cache.generation_store

    def _counter(self, key: tuple[str, str, str]) -> Callable[[int], None]:
        def counted(n: int) -> None:
            with self.cache._guard:
                self.cache.calls[key] += n

        return counted

    def _note_all(self, warnings: list[str]) -> None:
        for w in warnings:
            if w not in self.notes:
                self.notes.append(w)

    def note(self, message: str) -> None:
        """Record a warning shown with this check's result."""
        self.notes.append(message)

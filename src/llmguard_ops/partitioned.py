"""Datasets larger than memory: a folder of Parquet partitions, read one partition at a time.

A suite marks a dataset ``partitioned: true`` (or gives a folder with ``format: parquet``).
Loading it reads only the Parquet footers: the files (every ``*.parquet`` under the folder,
sorted by relative path; that order is *the* partition order), their row counts and the
schema, which must be the same in every partition. The rows are never loaded by the host:
``LoadedDataset.frame`` of such a dataset raises, so a check that cannot stream fails
closed. A check reads the rows through :meth:`CheckContext.partition_map`, which calls
``fn(frame)`` on each partition's frame (only the columns asked for) and returns the
results in partition order:

* locally, one partition after the other in this process (at most one partition's
  columns in memory at a time);
* when Ray is initialised (``ray.is_initialized()``), one Ray task per partition, each
  declaring ``memory=`` (the dataset's ``task_memory_mb``; Ray schedules on it and its
  memory monitor kills tasks of a node short of memory) and recording its peak memory,
  so the report can show every task stayed under its limit.

The digest of the dataset is the host's folder-manifest digest (``sha256_path``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .artifacts import LoadedDataset, check_file, check_roles, sha256_path
from .errors import ArtifactError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .loading import LoadedSuite
    from .suite import DatasetSpec

R = TypeVar("R")

#: Ray's ``memory=`` per partition task when the dataset does not set ``task_memory_mb``
DEFAULT_TASK_MEMORY_MB = 512


def wants_partitions(spec: DatasetSpec, path: Path) -> bool:
    """Is this dataset entry a partitioned one (``partitioned: true``, or a folder in Parquet)?"""
    if spec.partitioned:
        return True
    return path.is_dir() and (spec.format == "parquet" or spec.loader == "parquet")


@dataclass(frozen=True)
class PartitionSource:
    """The partitions of one folder: files in order, their row counts, the common schema."""

    folder: Path
    files: tuple[Path, ...]
    rows: tuple[int, ...]
    schema: pa.Schema

    @property
    def columns(self) -> list[str]:
        return [str(n) for n in self.schema.names]

    def read(self, index: int, columns: Sequence[str] | None) -> pd.DataFrame:
        return read_partition(self.files[index], columns)


def read_partition(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    """One partition's columns as a DataFrame (pyarrow reads only those column chunks)."""
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=list(columns) if columns is not None else None).to_pandas()


def _describe_type(schema: pa.Schema, name: str) -> str:
    return str(schema.field(name).type) if name in schema.names else "absent"


def open_partitions(folder: Path) -> PartitionSource:
    """Read the footers of every partition; one-line :class:`ArtifactError` when the folder
    holds none, a file is no Parquet, or the partitions' schemas differ (naming the file)."""
    import pyarrow.parquet as pq

    if not folder.is_dir():
        raise ArtifactError(f"{folder} is not a folder (a partitioned dataset is a folder of Parquet files)")
    files = sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in (".parquet", ".pq") and p.is_file()),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise ArtifactError(f"{folder}: the folder holds no .parquet partition")
    rows: list[int] = []
    first: pa.Schema | None = None
    for path in files:
        rel = path.relative_to(folder).as_posix()
        try:
            meta = pq.read_metadata(path)
            schema = meta.schema.to_arrow_schema()
        except Exception as exc:
            raise ArtifactError(f"{folder}: partition {rel} is not readable Parquet: {exc}") from None
        schema = schema.remove_metadata()
        if first is None:
            first, first_rel = schema, rel
        elif not schema.equals(first):
            names = list(dict.fromkeys([*first.names, *schema.names]))
            diff = [n for n in names if _describe_type(first, n) != _describe_type(schema, n)]
            what = ", ".join(
                f"'{n}' is {_describe_type(schema, n)} (in {first_rel}: {_describe_type(first, n)})" for n in diff[:3]
            )
            raise ArtifactError(
                f"{folder}: partition {rel} has another schema than {first_rel}: {what or 'column order differs'}"
            )
        rows.append(int(meta.num_rows))
    assert first is not None
    return PartitionSource(folder=folder, files=tuple(files), rows=tuple(rows), schema=first)


class PartitionedDataset(LoadedDataset):
    """A dataset of the run that stays on disk: its partitions, schema and digest.

    ``frame`` and ``y()`` raise :class:`ArtifactError` (the rows are not in memory): read
    it with :meth:`CheckContext.partition_map`.
    """

    def __init__(self, name: str, spec: DatasetSpec, path: Path, sha256: str, source: PartitionSource) -> None:
        self.name, self.spec, self.path, self.sha256 = name, spec, path, sha256
        self.source = source

    @property
    def frame(self) -> pd.DataFrame:
        raise ArtifactError(
            f"dataset '{self.name}' is partitioned ({len(self.source.files)} Parquet partitions) and is not "
            "loaded into memory; this check does not read partitioned data"
        )

    def __repr__(self) -> str:
        return f"PartitionedDataset(name={self.name!r}, path={str(self.path)!r}, partitions={len(self.source.files)})"

    @property
    def rows(self) -> int:
        return sum(self.source.rows)

    @property
    def columns(self) -> list[str]:
        return self.source.columns

    @property
    def task_memory(self) -> int:
        """Bytes each partition task may use (Ray's ``memory=``)."""
        return (self.spec.task_memory_mb or DEFAULT_TASK_MEMORY_MB) * 1024 * 1024

    def y(self) -> Any:
        return self.frame  # raises: the target is not in memory either

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "rows": self.rows,
            "columns": self.columns,
            "target": self.spec.target,
            "sensitive": self.sensitive,
            "partitions": len(self.source.files),
            "task_memory_mb": self.task_memory // (1024 * 1024),
        }


def load_partitioned(loaded: LoadedSuite, name: str, spec: DatasetSpec, path: Path) -> PartitionedDataset:
    """The dataset entry ``name`` as partitions; located one-line errors for a missing folder,
    an empty one, unreadable or mismatched partitions, and declared columns not in them."""
    where = ("datasets", name, "path")
    problem = check_file(loaded, where, path, folders=True)
    if problem is not None:
        raise problem
    smap = loaded.source
    try:
        source = open_partitions(path)
        digest, _ = sha256_path(path)
    except ArtifactError as exc:
        raise smap.error(where, str(exc)) from None
    check_roles(loaded, name, spec, source.columns, f"the partitions of {path.name}")
    return PartitionedDataset(name=name, spec=spec, path=path, sha256=digest, source=source)


# -- mapping a function over partitions ------------------------------------------------


@dataclass(frozen=True)
class PartitionTask:
    """What one partition's task did: rows, seconds, where, and its peak memory."""

    partition: str
    rows: int
    seconds: float
    where: str
    #: peak bytes the task allocated (Python/NumPy heap traced by tracemalloc plus the
    #: Arrow pool), or None where it is not measured (in the run's own process)
    peak_memory_bytes: int | None = None


@dataclass
class PartitionMap(Generic[R]):
    """The results of ``fn`` per partition, in partition order, and how they were computed."""

    values: list[R]
    tasks: list[PartitionTask]
    executor: str  # "local" | "ray" | "in-memory"
    memory_limit_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    def merge(self, combine: Callable[[list[R]], R]) -> R:
        """``combine(values)`` (e.g. ``Moments.merge_all``)."""
        return combine(self.values)

    @property
    def peak_memory_bytes(self) -> int | None:
        peaks = [t.peak_memory_bytes for t in self.tasks if t.peak_memory_bytes is not None]
        return max(peaks) if peaks else None

    def describe(self) -> dict[str, Any]:
        """What a report says about the pass: executor, partitions, rows, memory."""
        out: dict[str, Any] = {
            "executor": self.executor,
            "partitions": len(self.tasks),
            "rows": sum(t.rows for t in self.tasks),
            "seconds": round(sum(t.seconds for t in self.tasks), 3),
        }
        if self.memory_limit_bytes is not None:
            out["task_memory_limit_bytes"] = self.memory_limit_bytes
        if self.peak_memory_bytes is not None:
            out["task_peak_memory_bytes"] = self.peak_memory_bytes
            out["peak_memory_method"] = "per task: tracemalloc peak (Python and NumPy heap) + Arrow pool bytes held"
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _run_one(
    path: str, columns: list[str] | None, fn: Callable[[pd.DataFrame], R], label: str
) -> tuple[R, PartitionTask]:
    """Read one partition and apply ``fn`` inside a Ray task, measuring its peak memory.

    The peak counts what the task allocates: the Python and NumPy heap (tracemalloc's
    peak, which sees every NumPy buffer) plus the Arrow memory pool's bytes held after the
    read, after the conversion to pandas and after ``fn`` (pandas' Arrow-backed strings
    live there). A worker process's RSS says little here: Ray reuses workers, and memory
    one task freed stays in the process for the next. Modules ``fn`` imports on first
    use are loaded by a call on zero rows before the measurement starts.
    """
    import tracemalloc

    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = pq.read_schema(path).empty_table()
    if columns is not None:
        empty = empty.select(columns)
    # a warm-up on zero rows: the modules fn imports on first use are not the task's data
    # (fn may refuse zero rows; the real call below reports its own errors)
    with contextlib.suppress(Exception):
        fn(empty.to_pandas())
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    arrow0 = pa.total_allocated_bytes()
    t0 = time.perf_counter()
    table = pq.read_table(path, columns=columns)
    arrow = pa.total_allocated_bytes()
    frame = table.to_pandas()
    arrow = max(arrow, pa.total_allocated_bytes())
    del table
    rows = len(frame)
    value = fn(frame)
    arrow = max(arrow, pa.total_allocated_bytes())
    del frame
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base + max(0, arrow - arrow0)
    if not tracing:
        tracemalloc.stop()
    try:
        import ray

        where = f"ray node {ray.get_runtime_context().get_node_id()[:12]} pid {os.getpid()}"
    except Exception:  # pragma: no cover - outside a Ray worker
        where = f"pid {os.getpid()}"
    return value, PartitionTask(label, rows, seconds, where, peak)


def map_partitions(
    dataset: LoadedDataset,
    fn: Callable[[pd.DataFrame], R],
    columns: Sequence[str] | None = None,
    memory: int | None = None,
) -> PartitionMap[R]:
    """``fn`` over the partitions of ``dataset`` in order (see the module docstring).

    An in-memory dataset is one partition (its frame, restricted to ``columns``).
    A column not in the dataset is an :class:`ArtifactError` naming it.
    """
    wanted = list(columns) if columns is not None else None
    available = dataset.columns
    if wanted is not None:
        missing = [c for c in wanted if c not in available]
        if missing:
            hint = did_you_mean(missing[0], available)
            raise ArtifactError(f"dataset '{dataset.name}' has no column {', '.join(map(repr, missing))}{hint}")
    if not isinstance(dataset, PartitionedDataset):
        t0 = time.perf_counter()
        frame = dataset.frame if wanted is None else dataset.frame[wanted]
        value = fn(frame)
        task = PartitionTask(dataset.path.name, len(frame), time.perf_counter() - t0, "in process")
        return PartitionMap([value], [task], "in-memory")
    source = dataset.source
    labels = [p.relative_to(source.folder).as_posix() for p in source.files]
    limit = memory if memory is not None else dataset.task_memory
    if _ray_ready():
        return _map_on_ray(source, labels, fn, wanted, limit)
    values: list[R] = []
    tasks: list[PartitionTask] = []
    for path, label in zip(source.files, labels, strict=True):
        t0 = time.perf_counter()
        frame = read_partition(path, wanted)
        rows = len(frame)
        values.append(fn(frame))
        del frame
        tasks.append(PartitionTask(label, rows, time.perf_counter() - t0, "in process"))
    return PartitionMap(values, tasks, "local")


def _ray_ready() -> bool:
    """Is Ray initialised in this process? (Never imports Ray: unimported, it is not running.)"""
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


def _map_on_ray(
    source: PartitionSource,
    labels: list[str],
    fn: Callable[[pd.DataFrame], R],
    columns: list[str] | None,
    limit: int,
) -> PartitionMap[R]:
    import ray

    task: Any = ray.remote(num_cpus=1, memory=limit, max_retries=0)(_run_one)
    fn_ref = ray.put(fn)  # one copy in the object store, not one per task
    refs = [task.remote(str(p), columns, fn_ref, label) for p, label in zip(source.files, labels, strict=True)]
    try:
        done = ray.get(refs)  # a failed or killed task raises here: the check is an ERROR
    except BaseException:
        for ref in refs:  # the rest of the pass is of no use: free the cluster
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        raise
    values = [v for v, _ in done]
    tasks = [t for _, t in done]
    out = PartitionMap(values, tasks, "ray", memory_limit_bytes=limit)
    over = [t for t in tasks if t.peak_memory_bytes is not None and t.peak_memory_bytes > limit]
    if over:
        out.notes.append(
            f"{len(over)} partition task(s) used more than their memory limit of {limit} bytes "
            f"(largest {max(t.peak_memory_bytes or 0 for t in over)}): use smaller partitions or raise task_memory_mb"
        )
    return out

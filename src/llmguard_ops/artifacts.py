"""Models and datasets of a run: loaded once, digested with sha256, fed their features.

Folder digests use a manifest anyone can rebuild with coreutils: one line
``<sha256>  <relative/posix/path>`` per regular file, sorted by path (byte order), and the
digest of the folder is the sha256 of that manifest text::

    cd MODEL_DIR && find -L . -type f -printf '%P\\n' | LC_ALL=C sort \\
        | xargs -d '\\n' sha256sum | sha256sum

Symbolic links are followed (``find -L``): a link to a file is listed under the link's
own path with its target's content, so a Hugging Face cache snapshot (a folder of links
into ``blobs/``) digests to its real weights. A dangling link, a link loop and a folder
with no regular file at all are errors: an empty manifest would match any empty folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArtifactError, SuiteError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from .loading import LoadedSuite
    from .registry import ModelLoader, Registry
    from .suite import DatasetSpec, ModelSpec

log = logging.getLogger("llmguard")

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_manifest(path: Path) -> list[tuple[str, str]]:
    """``[(relative posix path, sha256)]`` for every regular file under ``path``, sorted.

    Links are followed, as ``find -L`` does; raises :class:`ArtifactError` for a dangling
    link or a link back into a folder being walked.
    """
    entries: list[tuple[str, str]] = []
    root = Path(path)
    start = os.stat(root)

    def walk(folder: Path, rel: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise ArtifactError(f"{folder}: cannot list the folder: {exc.strerror}") from None
        for name in names:
            full = folder / name
            sub = f"{rel}/{name}" if rel else name
            try:
                st = os.stat(full)  # follows links
            except OSError:
                if full.is_symlink():
                    raise ArtifactError(
                        f"{full}: dangling symbolic link to {os.readlink(full)} "
                        "(its target is missing, so the folder cannot be digested)"
                    ) from None
                raise ArtifactError(f"{full}: cannot read") from None
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    raise ArtifactError(f"{full}: symbolic link loop (links back to a parent)")
                walk(full, sub, ancestors | {key})
            elif stat.S_ISREG(st.st_mode):
                entries.append((sub, sha256_file(full)))
            # FIFOs, sockets and devices are not content (find -type f skips them too)

    walk(root, "", frozenset({(start.st_dev, start.st_ino)}))
    entries.sort(key=lambda e: e[0].encode("utf-8", "surrogateescape"))
    return entries


def sha256_path(path: Path) -> tuple[str, str]:
    """Digest of a file, or of a folder's sorted manifest; returns ``(hex, kind)``.

    A folder without a single regular file is an error (its manifest would be empty and
    its digest ``e3b0c442…``, the same as that of every other empty folder).
    """
    if path.is_dir():
        entries = folder_manifest(path)
        if not entries:
            raise ArtifactError(f"{path}: the folder holds no regular file, so there is nothing to digest")
        manifest = "".join(f"{digest}  {rel}\n" for rel, digest in entries)
        data = manifest.encode("utf-8", "surrogateescape")
        return hashlib.sha256(data).hexdigest(), "folder-manifest-sha256"
    return sha256_file(path), "file-sha256"


@dataclass
class LoadedDataset:
    """A dataset of the run with its column roles and digest."""

    name: str
    spec: DatasetSpec
    path: Path
    frame: pd.DataFrame
    sha256: str

    @property
    def target(self) -> str | None:
        return self.spec.target

    @property
    def sensitive(self) -> list[str]:
        return list(self.spec.sensitive)

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def y(self) -> Any:
        if self.spec.target is None:
            raise ArtifactError(f"dataset '{self.name}' declares no target column")
        return self.frame[self.spec.target].to_numpy()

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "rows": len(self.frame),
            "columns": [str(c) for c in self.frame.columns],
            "target": self.spec.target,
            "sensitive": self.sensitive,
        }


@dataclass
class LoadedModel:
    """A model of the run: the live object, its loader and digest."""

    name: str
    spec: ModelSpec
    obj: Any
    sha256: str
    digest_kind: str
    loader: str
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_kind(self) -> str:
        """``"text"`` for language models and scikit-learn text pipelines (fed a text
        column), else ``"tabular"``; an object's own ``input_kind`` wins."""
        declared = getattr(self.obj, "input_kind", None)
        if declared is not None:
            return str(declared)
        return "text" if _takes_texts(self.obj) else "tabular"

    def feature_names(self, dataset: LoadedDataset) -> list[str]:
        """The columns this model is fed, by the rule of DESIGN.md.

        The names the fitted model declares (``feature_names_in_``), else the dataset's
        declared ``features``, else every column that is neither target nor sensitive.
        """
        declared = getattr(self.obj, "feature_names_in_", None)
        if declared is not None:
            names = [str(c) for c in declared]
        elif dataset.spec.features is not None:
            names = list(dataset.spec.features)
        else:
            skip = {dataset.spec.target, dataset.spec.text, *dataset.spec.sensitive}
            names = [c for c in dataset.columns if c not in skip]
        missing = [c for c in names if c not in dataset.columns]
        if missing:
            raise ArtifactError(
                f"model '{self.name}' needs columns missing from dataset '{dataset.name}': {', '.join(missing)}"
            )
        return names

    def inputs(self, dataset: LoadedDataset) -> Any:
        """What to pass to ``predict``: a feature frame, or a list of texts for text models."""
        if self.input_kind == "text":
            column = dataset.spec.text
            if column is None:
                raise ArtifactError(f"dataset '{dataset.name}' declares no 'text' column for model '{self.name}'")
            return [str(t) for t in dataset.frame[column].tolist()]
        frame = dataset.frame[self.feature_names(dataset)]
        if getattr(self.obj, "feature_names_in_", None) is None and hasattr(self.obj, "n_features_in_"):
            return frame.to_numpy()  # fitted on arrays: avoid sklearn's feature-name warning
        return frame

    def describe(self) -> dict[str, Any]:
        return {
            "loader": self.loader,
            "path": str(self.path) if self.path else self.spec.path,
            "sha256": self.sha256,
            "digest": self.digest_kind,
            "type": type(self.obj).__qualname__,
            **self.extra,
        }


def _takes_texts(obj: Any) -> bool:
    """A scikit-learn text vectorizer (Count/Tfidf/Hashing), or a Pipeline that starts with one.

    They expect a 1-D sequence of documents; a one-column frame would be iterated as its
    column names. Recognised by the vectorizers' ``build_analyzer`` method, without
    importing scikit-learn.
    """
    steps = getattr(obj, "steps", None)
    first = steps[0][1] if isinstance(steps, list) and steps and isinstance(steps[0], tuple) else obj
    return callable(getattr(first, "build_analyzer", None))


def resolve_path(base_dir: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base_dir / p


def check_file(
    loaded: LoadedSuite,
    where: tuple[str | int, ...],
    path: Path,
    *,
    folders: bool = False,
    special_files: bool = False,
) -> SuiteError | None:
    """The located error for an input path that is missing, escapes or is no regular file.

    Under ``policy.paths: confined`` the path, with every symlink resolved, must lie in the
    suite's folder. Unless the loader declares ``special_files``, only regular files (and,
    with ``folders``, folders) are accepted: a FIFO or ``/dev/zero`` would block or never end.
    """
    smap = loaded.source
    if loaded.suite.policy.paths == "confined":
        base = loaded.base_dir.resolve()
        real = path.resolve()
        if not real.is_relative_to(base):
            return smap.error(
                where, f"{path} resolves to {real}, outside the suite's folder {base} (policy.paths: confined)"
            )
    try:
        info = path.stat()
    except FileNotFoundError:
        return smap.error(where, f"file not found: {path}")
    except OSError as exc:
        return smap.error(where, f"cannot read {path}: {exc.strerror or exc}")
    if special_files or stat.S_ISREG(info.st_mode) or (folders and stat.S_ISDIR(info.st_mode)):
        return None
    kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, device or socket)"
    return smap.error(where, f"{path} is {kind}; give a regular file")


def load_datasets(loaded: LoadedSuite, registry: Registry) -> dict[str, LoadedDataset]:
    """Read every dataset, check its declared columns, digest its file.

    Raises :class:`~llmguard_ops.loading.SuiteErrors` with the problems of every dataset.
    """
    from .loading import SuiteErrors

    out: dict[str, LoadedDataset] = {}
    errors: list[SuiteError] = []
    for name, spec in loaded.suite.datasets.items():
        try:
            out[name] = _load_dataset(loaded, registry, name, spec)
        except SuiteErrors as exc:
            errors.extend(exc.errors)
        except SuiteError as exc:
            errors.append(exc)
    if errors:
        raise SuiteErrors(errors)
    return out


def _load_dataset(loaded: LoadedSuite, registry: Registry, name: str, spec: DatasetSpec) -> LoadedDataset:
    smap = loaded.source
    path = resolve_path(loaded.base_dir, spec.path)
    from .partitioned import load_partitioned, wants_partitions

    if wants_partitions(spec, path):
        return load_partitioned(loaded, name, spec, path)
    loader_name = spec.loader or _loader_by_extension(path, registry)
    if loader_name is None:
        raise smap.error(
            ("datasets", name, "path"),
            f"no dataset loader reads '{path.suffix}' files; "
            f"set 'loader:' (installed: {', '.join(sorted(registry.dataset_loaders))})",
        )
    loader = registry.dataset_loaders.get(loader_name)
    if loader is None:
        hint = did_you_mean(loader_name, registry.dataset_loaders)
        raise smap.error(("datasets", name, "loader"), f"unknown dataset loader '{loader_name}'{hint}")
    problem = check_file(loaded, ("datasets", name, "path"), path, special_files=loader.special_files)
    if problem is not None:
        raise problem
    try:
        frame = loader.load(path, spec)
    except ImportError as exc:
        raise smap.error(("datasets", name, "path"), f"cannot read {path.name}: {exc}") from None
    except Exception as exc:
        message = f"cannot read {path.name}: {type(exc).__name__}: {exc}"
        raise smap.error(("datasets", name, "path"), message) from None
    check_roles(loaded, name, spec, [str(c) for c in frame.columns], path.name)
    return LoadedDataset(name=name, spec=spec, path=path, frame=frame, sha256=sha256_file(path))


def check_roles(loaded: LoadedSuite, name: str, spec: DatasetSpec, columns: list[str], where: str) -> None:
    """Raise :class:`~llmguard_ops.loading.SuiteErrors` for each declared column (target,
    text, sensitive, features) that is not among ``columns`` of ``where``."""
    from .loading import SuiteErrors

    roles: list[tuple[tuple[str | int, ...], str]] = []
    if spec.target:
        roles.append((("datasets", name, "target"), spec.target))
    if spec.text:
        roles.append((("datasets", name, "text"), spec.text))
    roles += [(("datasets", name, "sensitive", i), c) for i, c in enumerate(spec.sensitive)]
    roles += [(("datasets", name, "features", i), c) for i, c in enumerate(spec.features or [])]
    missing = [
        loaded.source.error(at, f"column '{column}' not in {where}{did_you_mean(column, columns)}")
        for at, column in roles
        if column not in columns
    ]
    if missing:
        raise SuiteErrors(missing)


def _loader_by_extension(path: Path, registry: Registry) -> str | None:
    suffixes = "".join(path.suffixes).lower()
    for loader in registry.dataset_loaders.values():
        if any(suffixes.endswith(ext) for ext in loader.extensions):
            return loader.name
    return None


def check_model_paths(loaded: LoadedSuite, registry: Registry) -> None:
    """Validate model entries without loading (and so without running pickled code).

    Raises :class:`~llmguard_ops.loading.SuiteErrors` with the problems of every model.
    """
    from .loading import SuiteErrors

    errors: list[SuiteError] = []
    for name, spec in loaded.suite.models.items():
        problem = _check_model(loaded, registry, name, spec)
        if problem is not None:
            errors.append(problem)
    if errors:
        raise SuiteErrors(errors)


def _check_model(loaded: LoadedSuite, registry: Registry, name: str, spec: ModelSpec) -> SuiteError | None:
    loader = registry.model_loaders[spec.loader]
    if loader.needs_path:
        if not spec.path:
            return loaded.source.error(("models", name), f"loader '{spec.loader}' needs a 'path'", prefer_key=True)
        target = spec.path.split(":", 1)[0] if spec.loader == "python" else spec.path
        if spec.loader == "python" and not target.endswith(".py"):
            return None  # an importable module name, resolved at load time
        path = resolve_path(loaded.base_dir, target)
        problem = check_file(
            loaded, ("models", name, "path"), path, folders=spec.loader != "python", special_files=loader.special_files
        )
        if problem is not None:
            return problem
    unsafe = loader.unsafe_format(spec, loaded.base_dir) if loader.unsafe_format else None
    if unsafe and not loaded.suite.policy.allow_pickle:
        return loaded.source.error(
            ("models", name, "path"),
            f"model '{name}' is stored as {unsafe} (loading it runs code stored in the file) and "
            "policy.allow_pickle is false; save it with skops (.skops) or another safe format",
        )
    return None


def _within(seconds: float, what: str, work: Callable[[], Any]) -> Any:
    """``work()`` in a daemon thread, or :class:`ArtifactError` after ``seconds``.

    A loader that never returns (a factory waiting on a socket, a read of a pipe) stops
    the run with a clear error instead of hanging it; a loader that calls ``sys.exit`` is
    an error, never the run's exit status.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"llmguard-load-{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ArtifactError(f"loading did not finish within {seconds:g} s (policy.load_timeout)")
    error = box.get("error")
    if isinstance(error, SystemExit | KeyboardInterrupt | GeneratorExit):
        raise ArtifactError(f"the loader raised {type(error).__name__}({error}) while loading")
    if error is not None:
        raise error
    return box["value"]


def release_facts(loaded: LoadedSuite, name: str) -> dict[str, Any]:
    """The prompt and generation settings released with model ``name`` (report, attestation).

    The prompt's sha256 is over its canonical JSON (sorted keys, no spaces, UTF-8), so two
    runs can tell whether they released the same prompt.
    """
    import json

    suite = loaded.suite
    spec = suite.models[name]
    facts: dict[str, Any] = {}
    prompt = suite.prompt_of(name)
    if prompt is not None:
        body = prompt.model_dump(exclude_none=True)
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        facts["prompt"] = {
            "name": spec.prompt if isinstance(spec.prompt, str) else None,
            **body,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }
    if spec.generation is not None:
        facts["generation"] = spec.generation.model_dump()
    if spec.price is not None:
        facts["price"] = spec.price.model_dump()
    return facts


def model_digest(loader: ModelLoader, spec: ModelSpec, base_dir: Path) -> tuple[str, str]:
    """``(sha256, kind)`` of what ``loader`` loads for ``spec``: its own digest, else the path's."""
    if loader.digest is not None:
        return loader.digest(spec, base_dir)
    return sha256_path(resolve_path(base_dir, spec.path or ""))


def load_models(loaded: LoadedSuite, registry: Registry) -> dict[str, LoadedModel]:
    """Load every model once with its loader and digest it, each within ``policy.load_timeout``."""
    check_model_paths(loaded, registry)
    out: dict[str, LoadedModel] = {}
    from .evidence.model_signature import check as check_signature

    timeout = loaded.suite.policy.load_timeout
    for name, spec in loaded.suite.models.items():
        loader = registry.model_loaders[spec.loader]
        check_signature(loaded, name, spec)  # before the loader runs any code of the model

        def work(loader: ModelLoader = loader, spec: ModelSpec = spec) -> tuple[str, str, Any]:
            digest, kind = model_digest(loader, spec, loaded.base_dir)
            return digest, kind, loader.load(spec, loaded.base_dir)

        try:
            digest, kind, obj = _within(timeout, name, work)
        except SuiteError:
            raise
        except ImportError as exc:
            raise loaded.source.error(
                ("models", name, "loader"), f"loader '{spec.loader}' needs a missing package: {exc}"
            ) from None
        except Exception as exc:
            what = str(exc) if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
            raise loaded.source.error(("models", name, "path"), f"cannot load model: {what}") from None
        path = resolve_path(loaded.base_dir, spec.path) if spec.path and loader.needs_path else None
        extra: dict[str, Any] = {}
        unsafe = loader.unsafe_format(spec, loaded.base_dir) if loader.unsafe_format else None
        if unsafe:
            extra["unsafe_format"] = unsafe
        out[name] = LoadedModel(
            name=name,
            spec=spec,
            obj=obj,
            sha256=digest,
            digest_kind=kind,
            loader=spec.loader,
            path=path,
            extra={**release_facts(loaded, name), **extra},
        )
    return out

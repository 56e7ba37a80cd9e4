"""Models and datasets of a run: loaded once, digested with sha256, fed their features.

Folder digests use a manifest anyone can rebuild with coreutils: one line
``<sha256>  <relative/posix/path>`` per regular file, sorted by path (byte order), and the
digest of the folder is the sha256 of that manifest text::

    cd MODEL_DIR && find . -type f -printf '%P\\n' | LC_ALL=C sort \\
        | xargs -d '\\n' sha256sum | sha256sum
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArtifactError, SuiteError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from .loading import LoadedSuite
    from .registry import Registry
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
    """``[(relative posix path, sha256)]`` for every regular file under ``path``, sorted."""
    entries = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = Path(root) / name
            if full.is_symlink() or not full.is_file():
                continue
            entries.append((full.relative_to(path).as_posix(), sha256_file(full)))
    entries.sort(key=lambda e: e[0].encode("utf-8"))
    return entries


def sha256_path(path: Path) -> tuple[str, str]:
    """Digest of a file, or of a folder's sorted manifest; returns ``(hex, kind)``."""
    if path.is_dir():
        manifest = "".join(f"{digest}  {rel}\n" for rel, digest in folder_manifest(path))
        return hashlib.sha256(manifest.encode("utf-8")).hexdigest(), "folder-manifest-sha256"
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

    def y(self) -> Any:
        if self.spec.target is None:
            raise ArtifactError(f"dataset '{self.name}' declares no target column")
        return self.frame[self.spec.target].to_numpy()

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "sha256": self.sha256, "rows": len(self.frame),
            "columns": [str(c) for c in self.frame.columns], "target": self.spec.target,
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
        """``"text"`` for language models (fed a text column), else ``"tabular"``."""
        return str(getattr(self.obj, "input_kind", "tabular"))

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
            names = [str(c) for c in dataset.frame.columns if c not in skip]
        missing = [c for c in names if c not in dataset.frame.columns]
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
            "loader": self.loader, "path": str(self.path) if self.path else self.spec.path,
            "sha256": self.sha256, "digest": self.digest_kind, "type": type(self.obj).__qualname__,
            **self.extra,
        }


def resolve_path(base_dir: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base_dir / p


def load_datasets(loaded: LoadedSuite, registry: Registry) -> dict[str, LoadedDataset]:
    """Read every dataset, check its declared columns, digest its file."""
    out: dict[str, LoadedDataset] = {}
    smap = loaded.source
    for name, spec in loaded.suite.datasets.items():
        path = resolve_path(loaded.base_dir, spec.path)
        if not path.exists():
            raise smap.error(("datasets", name, "path"), f"file not found: {path}")
        loader_name = spec.loader or _loader_by_extension(path, registry)
        if loader_name is None:
            raise smap.error(("datasets", name, "path"), f"no dataset loader reads '{path.suffix}' files; "
                             f"set 'loader:' (installed: {', '.join(sorted(registry.dataset_loaders))})")
        loader = registry.dataset_loaders.get(loader_name)
        if loader is None:
            hint = did_you_mean(loader_name, registry.dataset_loaders)
            raise smap.error(("datasets", name, "loader"), f"unknown dataset loader '{loader_name}'{hint}")
        try:
            frame = loader.load(path, spec)
        except ImportError as exc:
            raise smap.error(("datasets", name, "path"), f"cannot read {path.name}: {exc}") from None
        except Exception as exc:
            message = f"cannot read {path.name}: {type(exc).__name__}: {exc}"
            raise smap.error(("datasets", name, "path"), message) from None
        columns = [str(c) for c in frame.columns]
        roles: list[tuple[tuple[str | int, ...], str]] = []
        if spec.target:
            roles.append((("datasets", name, "target"), spec.target))
        if spec.text:
            roles.append((("datasets", name, "text"), spec.text))
        roles += [(("datasets", name, "sensitive", i), c) for i, c in enumerate(spec.sensitive)]
        roles += [(("datasets", name, "features", i), c) for i, c in enumerate(spec.features or [])]
        for where, column in roles:
            if column not in columns:
                raise smap.error(where, f"column '{column}' not in {path.name}{did_you_mean(column, columns)}")
        out[name] = LoadedDataset(name=name, spec=spec, path=path, frame=frame, sha256=sha256_file(path))
    return out


def _loader_by_extension(path: Path, registry: Registry) -> str | None:
    suffixes = "".join(path.suffixes).lower()
    for loader in registry.dataset_loaders.values():
        if any(suffixes.endswith(ext) for ext in loader.extensions):
            return loader.name
    return None


def check_model_paths(loaded: LoadedSuite, registry: Registry) -> None:
    """Validate model entries without loading (and so without running pickled code)."""
    for name, spec in loaded.suite.models.items():
        loader = registry.model_loaders[spec.loader]
        if loader.needs_path:
            if not spec.path:
                raise loaded.source.error(("models", name), f"loader '{spec.loader}' needs a 'path'", prefer_key=True)
            target = spec.path.split(":", 1)[0] if spec.loader == "python" else spec.path
            if spec.loader == "python" and not target.endswith(".py"):
                continue  # an importable module name, resolved at load time
            path = resolve_path(loaded.base_dir, target)
            if not path.exists():
                raise loaded.source.error(("models", name, "path"), f"file not found: {path}")


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
        facts["prompt"] = {"name": spec.prompt if isinstance(spec.prompt, str) else None, **body,
                           "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    if spec.generation is not None:
        facts["generation"] = spec.generation.model_dump()
    if spec.price is not None:
        facts["price"] = spec.price.model_dump()
    return facts


def load_models(loaded: LoadedSuite, registry: Registry) -> dict[str, LoadedModel]:
    """Load every model once with its loader and digest it."""
    check_model_paths(loaded, registry)
    out: dict[str, LoadedModel] = {}
    for name, spec in loaded.suite.models.items():
        loader = registry.model_loaders[spec.loader]
        try:
            if loader.digest is not None:
                digest, kind = loader.digest(spec, loaded.base_dir)
            else:
                digest, kind = sha256_path(resolve_path(loaded.base_dir, spec.path or ""))
            obj = loader.load(spec, loaded.base_dir)
        except SuiteError:
            raise
        except ImportError as exc:
            raise loaded.source.error(("models", name, "loader"),
                                      f"loader '{spec.loader}' needs a missing package: {exc}") from None
        except Exception as exc:
            raise loaded.source.error(("models", name, "path"),
                                      f"cannot load model: {type(exc).__name__}: {exc}") from None
        path = resolve_path(loaded.base_dir, spec.path) if spec.path and loader.needs_path else None
        out[name] = LoadedModel(name=name, spec=spec, obj=obj, sha256=digest, digest_kind=kind,
                                loader=spec.loader, path=path, extra=release_facts(loaded, name))
    return out

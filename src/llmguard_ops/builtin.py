"""The host's builtin plugin: dataset and model loaders, and the default check runner.

It uses the public hooks exactly as a third-party plugin would. Heavy libraries are
imported inside the loaders, when a suite names them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pickle
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import resolve_path, sha256_path
from .errors import ArtifactError
from .executors import ExecutorDefinition
from .hookspecs import hookimpl
from .registry import DatasetLoader, ModelLoader

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import pandas as pd

    from .context import CheckContext
    from .registry import CheckDefinition
    from .results import CheckOutput
    from .suite import DatasetSpec, ModelSpec

log = logging.getLogger("llmguard")


# -- datasets -------------------------------------------------------------------------


def _read_csv(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(path, **spec.options)


def _read_parquet(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path, **spec.options)


def _read_jsonl(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    import pandas as pd

    return pd.read_json(path, lines=True, **spec.options)


@hookimpl
def llmguard_register_dataset_loaders(register: Callable[[DatasetLoader], None]) -> None:
    register(DatasetLoader("csv", _read_csv, (".csv", ".csv.gz", ".tsv"), "Comma-separated values (pandas)."))
    register(DatasetLoader("parquet", _read_parquet, (".parquet", ".pq"), "Apache Parquet (pandas + pyarrow)."))
    register(DatasetLoader("jsonl", _read_jsonl, (".jsonl", ".ndjson", ".jsonl.gz"), "JSON lines (pandas)."))


# -- models ---------------------------------------------------------------------------


def _load_sklearn(spec: ModelSpec, base: Path) -> Any:
    path = resolve_path(base, spec.path or "")
    if path.suffix == ".skops":
        import skops.io as sio

        trusted = list(spec.options.get("trusted", []))
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted]
        if untrusted:
            raise ArtifactError(f"{path.name} contains types not listed in options.trusted: {', '.join(untrusted)}")
        return sio.load(path, trusted=trusted)
    warnings.warn(
        f"loading {path.name} with pickle runs code stored in the file; load only models you "
        "trust (or save them with skops)",
        UserWarning,
        stacklevel=2,
    )
    if path.suffix in (".pkl", ".pickle"):
        with open(path, "rb") as fh:
            return pickle.load(fh)
    import joblib

    return joblib.load(path)


def _sklearn_unsafe(spec: ModelSpec, base: Path) -> str | None:
    return None if (spec.path or "").lower().endswith(".skops") else "pickle"


def _torch_unsafe(spec: ModelSpec, base: Path) -> str | None:
    return None if spec.options.get("format") == "torchscript" else "pickle"


def _split_target(spec: ModelSpec) -> tuple[str, str]:
    target = spec.path or ""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ArtifactError(f"python loader expects 'module:callable' or 'file.py:callable', got {target!r}")
    return module, attr


def _python_module(module: str, base: Path) -> Any:
    if module.endswith(".py"):
        path = resolve_path(base, module)
        name = f"llmguard_suite_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ArtifactError(f"cannot import {path}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    return importlib.import_module(module)


def _load_python(spec: ModelSpec, base: Path) -> Any:
    module, attr = _split_target(spec)
    factory = getattr(_python_module(module, base), attr, None)
    if factory is None:
        raise ArtifactError(f"{module} has no attribute '{attr}'")
    kwargs = dict(spec.options.get("kwargs", {}))
    return factory(**kwargs) if callable(factory) and not hasattr(factory, "predict") else factory


def _digest_python(spec: ModelSpec, base: Path) -> tuple[str, str]:
    module, _ = _split_target(spec)
    if module.endswith(".py"):
        return sha256_path(resolve_path(base, module))[0], "python-source-sha256"
    found = importlib.util.find_spec(module)
    if found is None or not found.origin or not Path(found.origin).exists():
        raise ArtifactError(f"cannot find module '{module}'")
    return sha256_path(Path(found.origin))[0], "python-source-sha256"


def _load_torch(spec: ModelSpec, base: Path) -> Any:
    from .adapters import load_torch

    return load_torch(resolve_path(base, spec.path or ""), spec.options)


def _load_transformers(spec: ModelSpec, base: Path) -> Any:
    from .adapters import load_transformers

    return load_transformers(resolve_path(base, spec.path or ""), spec.options)


def _load_onnx(spec: ModelSpec, base: Path) -> Any:
    from .adapters import load_onnx

    return load_onnx(resolve_path(base, spec.path or ""), spec.options)


@hookimpl
def llmguard_register_model_loaders(register: Callable[[ModelLoader], None]) -> None:
    register(
        ModelLoader(
            "sklearn",
            _load_sklearn,
            "scikit-learn estimator: .joblib/.pkl (pickle runs code) or .skops.",
            unsafe_format=_sklearn_unsafe,
        )
    )
    register(
        ModelLoader(
            "python",
            _load_python,
            "A Python object or factory: 'module:callable' or 'file.py:callable'.",
            digest=_digest_python,
        )
    )
    register(
        ModelLoader(
            "torch",
            _load_torch,
            "A torch module (.pt, full pickle or TorchScript) on cpu or cuda.",
            unsafe_format=_torch_unsafe,
        )
    )
    register(
        ModelLoader(
            "transformers",
            _load_transformers,
            "A local transformers folder: causal LM or sequence classifier (no hub access).",
        )
    )
    register(ModelLoader("onnx", _load_onnx, "An ONNX graph run with onnxruntime."))


# -- executors --------------------------------------------------------------------------


def _open_local(options: Mapping[str, Any]) -> Any:
    from .executors.local import open_local

    return open_local(options)


def _open_ray(options: Mapping[str, Any]) -> Any:
    from .executors.ray import open_ray  # imports ray: only when a run chooses it

    return open_ray(options)


@hookimpl
def llmguard_register_executors(register: Callable[[ExecutorDefinition], None]) -> None:
    register(ExecutorDefinition("local", _open_local, "Every check in this process, in suite order (default)."))
    register(
        ExecutorDefinition(
            "ray",
            _open_ray,
            "Each check a Ray task placed by its resources (llmguard-ops[ray]; --ray-address ADDR).",
        )
    )


# -- the default check runner -----------------------------------------------------------


@hookimpl(trylast=True)
def llmguard_run_check(context: CheckContext, check: CheckDefinition, params: Any) -> CheckOutput:
    return check.run(context, params)

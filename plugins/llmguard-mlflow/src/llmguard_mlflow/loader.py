"""The ``mlflow`` model loader: ``models:/name@alias`` and ``models:/name/version`` URIs.

An alias is resolved to its version exactly once per suite model: the digest and the
load of one run always see the same registered version, even if someone moves the
alias meanwhile. The version's artifact folder is downloaded once per process and
digested with the host's folder manifest digest, so the report (and the attestation's
subject) identify the exact bytes that were evaluated; the registered name and version
are written into the digest description (``report.json`` → ``models.<name>.digest``).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmguard_ops import sha256_path

if TYPE_CHECKING:
    from llmguard_ops import ModelSpec

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")
#: what :func:`describe` writes and :func:`parse_description` reads back
_DESCRIPTION = re.compile(r"^mlflow models:/(?P<name>[^/@]+)/(?P<version>\d+) ")
TRACKING_ENV = "MLFLOW_TRACKING_URI"


@dataclass(frozen=True)
class ResolvedVersion:
    """One registered model version, resolved from a suite model entry."""

    tracking_uri: str | None
    registry_uri: str | None
    name: str
    version: str
    alias: str | None
    run_id: str | None
    source: str


@dataclass(frozen=True)
class Download:
    """A version's artifact folder on local disk with its manifest digest."""

    version: ResolvedVersion
    path: Path
    sha256: str
    kind: str


# spec object -> resolution; the host calls digest() then load() with the same spec
_resolved: dict[int, tuple[Any, ResolvedVersion]] = {}
# (tracking uri, registry uri, name, version) -> download; versions are immutable
_downloads: dict[tuple[str | None, str | None, str, str], Download] = {}
# downloads live here for the life of the process
_scratch: tempfile.TemporaryDirectory[str] | None = None
# sha256 -> resolution of every model loaded in this process (read by the decision hook)
loaded_versions: dict[str, ResolvedVersion] = {}


def parse_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of a ``models:/`` URI; raises ValueError otherwise."""
    match = _URI.match(uri.strip())
    if not match:
        raise ValueError(f"not a registered model URI: {uri!r} (use models:/NAME@ALIAS or models:/NAME/VERSION)")
    return match["name"], match["alias"], match["version"]


def tracking_uri(options: dict[str, Any]) -> str:
    """The tracking URI of a model entry: ``options.tracking_uri``, else ``MLFLOW_TRACKING_URI``.

    Required: MLflow's own fallback (``./mlruns`` in the working directory) would silently
    create an empty store and report every model as missing.
    """
    value = options.get("tracking_uri") or os.environ.get(TRACKING_ENV)
    if not value:
        raise ValueError(f"no MLflow tracking URI: set options.tracking_uri of the model or {TRACKING_ENV}")
    return str(value)


def quiet() -> None:
    """Switch off MLflow's usage telemetry before mlflow is imported (runs stay offline)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def client(uri: str | None, registry_uri: str | None = None) -> Any:
    """An ``MlflowClient`` for ``uri`` (the registry defaults to the tracking store)."""
    quiet()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=registry_uri or uri)


def resolve(spec: ModelSpec) -> ResolvedVersion:
    """The registered version a suite model entry names (alias resolved once per spec)."""
    cached = _resolved.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    name, alias, version = parse_uri(spec.path or "")
    uri = tracking_uri(spec.options)
    registry = spec.options.get("registry_uri") or uri
    mlflow_client = client(uri, registry)
    found = (
        mlflow_client.get_model_version_by_alias(name, alias)
        if alias
        else mlflow_client.get_model_version(name, version)
    )
    resolved = ResolvedVersion(
        tracking_uri=uri,
        registry_uri=registry,
        name=name,
        version=str(found.version),
        alias=alias,
        run_id=found.run_id or None,
        source=str(found.source),
    )
    if len(_resolved) > 64:  # one entry per suite model per run; keep the map small
        _resolved.clear()
    _resolved[id(spec)] = (spec, resolved)
    return resolved


def download(spec: ModelSpec) -> Download:
    """Download (once per process) and digest the artifact folder of the resolved version."""
    quiet()
    from mlflow.artifacts import download_artifacts

    version = resolve(spec)
    key = (version.tracking_uri, version.registry_uri, version.name, version.version)
    done = _downloads.get(key)
    if done is not None and done.path.is_dir():
        return done
    global _scratch
    if _scratch is None:  # removed when the process exits
        _scratch = tempfile.TemporaryDirectory(prefix="llmguard-mlflow-")
    target = Path(tempfile.mkdtemp(prefix=f"{version.name}-{version.version}-", dir=_scratch.name))
    # the version's own artifact location: no reliance on process-global registry settings
    source = client(version.tracking_uri, version.registry_uri).get_model_version_download_uri(
        version.name, version.version
    )
    local = download_artifacts(artifact_uri=source, dst_path=str(target), tracking_uri=version.tracking_uri)
    digest, kind = sha256_path(Path(local))
    done = Download(version=version, path=Path(local), sha256=digest, kind=kind)
    _downloads[key] = done
    loaded_versions[digest] = version
    return done


def describe(done: Download) -> str:
    """The digest description: registered name and version, run and alias used, digest kind."""
    v = done.version
    via = f" via @{v.alias}" if v.alias else ""
    run = f" run {v.run_id}" if v.run_id else ""
    return f"mlflow models:/{v.name}/{v.version}{via}{run} {done.kind}"


def parse_description(text: str | None) -> tuple[str, str] | None:
    """``(name, version)`` written by :func:`describe`, or None for other loaders."""
    match = _DESCRIPTION.match(text or "")
    return (match["name"], match["version"]) if match else None


def digest(spec: ModelSpec, base_dir: Path) -> tuple[str, str]:
    """``ModelLoader.digest``: sha256 of the version's artifact folder manifest."""
    done = download(spec)
    return done.sha256, describe(done)


class PyfuncModel:
    """A pyfunc model seen through the interface the host's checks use (``predict``).

    ``feature_names_in_`` comes from the model signature, so the host feeds the model
    exactly the columns it was logged with.
    """

    input_kind = "tabular"

    def __init__(self, model: Any) -> None:
        self.model = model
        schema = model.metadata.get_input_schema() if model.metadata is not None else None
        names = schema.input_names() if schema is not None and schema.has_input_names() else None
        if names:
            import numpy as np

            self.feature_names_in_ = np.asarray(names, dtype=object)

    def predict(self, inputs: Any) -> Any:
        """Predictions of the pyfunc model as a numpy array."""
        import numpy as np

        return np.asarray(self.model.predict(inputs))


def load(spec: ModelSpec, base_dir: Path) -> Any:
    """``ModelLoader.load``: the sklearn flavour natively, any other flavour through pyfunc."""
    quiet()
    import mlflow.pyfunc
    from mlflow.models import Model

    done = download(spec)
    flavors = Model.load(str(done.path / "MLmodel")).flavors
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(done.path))
    return PyfuncModel(mlflow.pyfunc.load_model(str(done.path)))

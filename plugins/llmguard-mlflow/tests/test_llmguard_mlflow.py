"""llmguard-mlflow end to end against a real MLflow registry (sqlite store in tmp_path).

Two sklearn versions of ``credit`` are registered: v1 a majority-class baseline that is
``champion`` at first, v2 a logistic regression. A suite evaluating v2 decides PROMOTE and
the alias moves to v2 with the signed evidence attached; a suite evaluating v1 decides
BLOCK and the alias stays on v2, v1 tagged with the reasons.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

import llmguard_ops
from llmguard_ops import ModelSpec, Reporter, hookimpl, main, sha256_path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# an environment without the plugin distribution (scripts/test.sh installs it) skips, naming why
llmguard_mlflow = pytest.importorskip("llmguard_mlflow", reason="pip install -e plugins/llmguard-mlflow")
mlflow = pytest.importorskip("mlflow", reason="llmguard-mlflow needs mlflow (constraints/ci.txt pins it)")
from llmguard_mlflow import loader  # noqa: E402
from llmguard_mlflow.attestation import AttestationError, verify_run  # noqa: E402

pytest_plugins = ["llmguard_ops.testing"]
# a real registry: sqlite store, logged and registered models; runs in tmp_path (.llmguard/ too)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("llmguard_isolated")]


@dataclass
class Registry:
    uri: str
    root: Path
    client: Any
    public_key: Path
    private_key: Path
    other_public_key: Path
    runs: dict[str, str]


def _keypair(folder: Path, stem: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = folder / f"{stem}.key", folder / f"{stem}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _register(client: Any, experiment: str, name: str, estimator: Any, example: Any) -> tuple[str, str]:
    """Log ``estimator`` in a run of ``experiment`` and register it; returns (version, run id)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    with mlflow.start_run(experiment_id=experiment) as run:
        # explicit requirements: inferring them imports every installed package (slow)
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            pip_requirements=["scikit-learn"],
            signature=infer_signature(example, estimator.predict(example)),
        )
    version = mlflow.register_model(info.model_uri, name)
    return str(version.version), run.info.run_id


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A sqlite-backed registry with credit v1 (baseline, champion) and v2 (logistic regression)."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri() if "MLFLOW_TRACKING_URI" in os.environ else None
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("credit", artifact_location=(root / "artifacts").as_uri())

    x, y = make_classification(n_samples=400, n_features=4, n_informative=3, n_redundant=0, random_state=3)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
    frame["y"] = y
    features = frame.drop(columns="y")
    frame.iloc[:200].to_csv(root / "current.csv", index=False)
    train = slice(200, 400)
    runs = {}
    for name, estimator in (("weak", DummyClassifier(strategy="most_frequent")), ("good", LogisticRegression())):
        estimator.fit(features.iloc[train], frame.y.iloc[train])
        version, runs[version] = _register(client, experiment, "credit", estimator, features.head(5))
        assert version == {"weak": "1", "good": "2"}[name]
    client.set_registered_model_alias("credit", "champion", "1")
    private, public = _keypair(root, "signer")
    _, other = _keypair(root, "other")
    yield Registry(
        uri=uri, root=root, client=client, public_key=public, private_key=private, other_public_key=other, runs=runs
    )
    mlflow.set_tracking_uri(previous)


def _suite(reg: Registry, candidate: str, public_key: Path, folder: Path) -> Path:
    """A suite gating the registered ``candidate`` on accuracy, with promotion settings."""
    text = {
        "apiVersion": "llmguard/v1",
        "name": "credit-release",
        "seed": 0,
        "metadata": {"mlflow": {"model": "candidate", "alias": "champion", "public_key": str(public_key)}},
        "models": {"candidate": {"loader": "mlflow", "path": candidate, "options": {"tracking_uri": reg.uri}}},
        "datasets": {"current": {"path": str(reg.root / "current.csv"), "target": "y"}},
        "checks": [
            {
                "id": "quality",
                "uses": "performance.classification",
                "with": {"n_resamples": 0},
                "gate": {"accuracy": {"min": 0.75}},
            }
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(text, sort_keys=False), encoding="utf-8")
    return path


class _Signer:
    """Stand-in for the host's evidence layer where it is not installed yet: a reporter
    writing ``attestation.dsse.json`` as the host does (DSSE over an in-toto Statement v1
    with one subject per model and the decision in the predicate), signed with ed25519."""

    def __init__(self, private_key: Path) -> None:
        self.private_key = private_key

    def write(self, report: Any, out_dir: Path) -> list[Path]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = serialization.load_pem_private_key(self.private_key.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": n, "digest": {"sha256": m["sha256"]}} for n, m in report.models.items()],
            "predicateType": "https://llmguard.dev/attestation/report/v1",
            "predicate": {
                "run_id": report.run_id,
                "decision": {"decision": report.decision.decision.value, "reasons": list(report.decision.reasons)},
            },
        }
        payload = json.dumps(statement, sort_keys=True).encode()
        kind = b"application/vnd.in-toto+json"
        signature = key.sign(b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload))
        envelope = {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": kind.decode(),
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        }
        path = out_dir / "attestation.dsse.json"
        path.write_text(json.dumps(envelope), encoding="utf-8")
        return [path]

    @hookimpl
    def llmguard_register_reporters(self, register: Callable[[Reporter], None]) -> None:
        register(Reporter(name="test-attestation", write=self.write))


def _run(reg: Registry, candidate: str, folder: Path, *, public_key: Path | None = None) -> Any:
    """Run a suite gating ``candidate`` through the host, signed with the registry's private key."""
    return _run_file(reg, _suite(reg, candidate, public_key or reg.public_key, folder), folder / "out")


def _run_file(reg: Registry, suite: Path, out: Path) -> Any:
    from llmguard_checks import performance

    objects: list[tuple[str, Any]] = [("performance", performance), ("mlflow", llmguard_mlflow)]
    kwargs: dict[str, Any] = {}
    if "key" in inspect.signature(llmguard_ops.run).parameters:
        kwargs["key"] = reg.private_key  # the host signs the attestation itself
    else:
        objects.append(("test-signer", _Signer(reg.private_key)))
    return llmguard_ops.run(suite, out, objects=objects, entry_points=False, **kwargs)


def _alias(reg: Registry) -> str:
    return str(reg.client.get_model_version_by_alias("credit", "champion").version)


def test_entry_point_is_installed() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="llmguard")}
    assert names.get("mlflow") == "llmguard_mlflow"


def test_importing_the_plugin_imports_no_mlflow() -> None:
    """Every llmguard command imports every entry point: the plugin must stay light."""
    import subprocess
    import sys

    code = "import sys, llmguard_mlflow; print(sorted(m for m in ('mlflow', 'sklearn') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_loader_resolves_alias_to_the_exact_version(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    spec = ModelSpec(loader="mlflow", path="models:/credit@champion", options={"tracking_uri": registry.uri})
    digest, description = loader.digest(spec, tmp_path)
    assert description.startswith("mlflow models:/credit/1 via @champion run ")
    assert loader.parse_description(description) == ("credit", "1")
    # the digest is the host's folder digest of exactly version 1's artifacts
    source = registry.client.get_model_version_download_uri("credit", "1")
    copy = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp_path / "v1"))
    assert (digest, "folder-manifest-sha256") == sha256_path(Path(copy))
    assert isinstance(loader.load(spec, tmp_path), DummyClassifier)

    pinned = ModelSpec(loader="mlflow", path="models:/credit/2", options={"tracking_uri": registry.uri})
    other, _ = loader.digest(pinned, tmp_path)
    assert other != digest
    assert isinstance(loader.load(pinned, tmp_path), LogisticRegression)
    with pytest.raises(ValueError, match="models:/NAME@ALIAS"):
        loader.parse_uri("runs:/abc/model")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match="no MLflow tracking URI"):  # never MLflow's silent ./mlruns
        loader.resolve(ModelSpec(loader="mlflow", path="models:/credit@champion"))


def test_alias_moves_on_promote_and_stays_on_block(registry: Registry, tmp_path: Path) -> None:
    assert _alias(registry) == "1"

    promoted = _run(registry, "models:/credit/2", tmp_path / "promote")
    assert promoted.report.decision.decision.value == "PROMOTE", promoted.report.decision.reasons
    assert promoted.warnings == []
    assert _alias(registry) == "2"
    tags = registry.client.get_model_version("credit", "2").tags
    assert tags["llmguard.decision"] == "PROMOTE"
    assert tags["llmguard.run_id"] == promoted.report.run_id
    attestation = (promoted.out_dir / "attestation.dsse.json").read_bytes()
    assert tags["llmguard.attestation_sha256"] == hashlib.sha256(attestation).hexdigest()
    folder = f"llmguard/{promoted.report.run_id}"
    logged = {Path(f.path).name for f in registry.client.list_artifacts(registry.runs["2"], folder)}
    assert {"attestation.dsse.json", "report.json", "decision.json"} <= logged
    decision = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=registry.runs["2"],
                artifact_path=f"{folder}/decision.json",
                dst_path=str(tmp_path / "dl"),
                tracking_uri=registry.uri,
            )
        ).read_text()
    )
    assert decision["alias_moved"] is True and decision["model"] == "models:/credit/2"

    blocked = _run(registry, "models:/credit/1", tmp_path / "block")
    assert blocked.report.decision.decision.value == "BLOCK"
    assert _alias(registry) == "2"  # the champion stays where the last passing gate put it
    tags = registry.client.get_model_version("credit", "1").tags
    assert tags["llmguard.decision"] == "BLOCK"
    assert "accuracy" in tags["llmguard.reasons"]
    assert "llmguard.attestation_sha256" not in tags


def test_promote_with_an_attestation_of_another_key_leaves_the_alias(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.client.set_registered_model_alias("credit", "champion", "1")
    # the operator's key (environment) wins over the suite's: the run is signed with another
    monkeypatch.setenv("LLMGUARD_MLFLOW_PUBLIC_KEY", str(registry.other_public_key))
    outcome = _run(registry, "models:/credit/2", tmp_path / "wrong-key", public_key=registry.public_key)
    assert outcome.report.decision.decision.value == "PROMOTE"
    assert _alias(registry) == "1"
    assert any("not moved" in w for w in outcome.warnings), outcome.warnings
    tags = registry.client.get_model_version("credit", "2").tags
    assert tags["llmguard.run_id"] == outcome.report.run_id
    assert "llmguard.promotion_refused" in tags


def test_attestation_is_bound_to_run_and_model(registry: Registry, tmp_path: Path) -> None:
    outcome = _run(registry, "models:/credit/2", tmp_path / "bind")
    args = (outcome.out_dir, registry.public_key)
    sha = outcome.report.models["candidate"]["sha256"]
    assert verify_run(*args, outcome.report.run_id, "candidate", sha).keyid
    with pytest.raises(AttestationError, match="no attestation"):
        verify_run(tmp_path, registry.public_key, outcome.report.run_id, "candidate", sha)
    with pytest.raises(AttestationError, match="not of run"):
        verify_run(*args, "another-run", "candidate", sha)
    with pytest.raises(AttestationError, match="no signed subject"):
        verify_run(*args, outcome.report.run_id, "candidate", "0" * 64)
    envelope = json.loads((outcome.out_dir / "attestation.dsse.json").read_text())
    envelope["payload"] = base64.b64encode(
        base64.b64decode(envelope["payload"]).replace(b"PROMOTE", b"PROMOTF")
    ).decode()
    (outcome.out_dir / "attestation.dsse.json").write_text(json.dumps(envelope))
    with pytest.raises(AttestationError):
        verify_run(*args, outcome.report.run_id, "candidate", sha)


def test_documented_example_promotes_the_challenger(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's suite, as shipped: challenger v2 beats champion v1 and takes the alias."""
    import shutil

    example = Path(__file__).parents[1] / "examples" / "credit-release.yaml"
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert example.read_text(encoding="utf-8") in readme
    suite = tmp_path / "credit-release.yaml"
    shutil.copy(example, suite)
    shutil.copy(registry.root / "current.csv", tmp_path / "current.csv")
    (tmp_path / "keys").mkdir()
    shutil.copy(registry.public_key, tmp_path / "keys" / "llmguard.pub")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    registry.client.set_registered_model_alias("credit", "champion", "1")
    registry.client.set_registered_model_alias("credit", "challenger", "2")

    outcome = _run_file(registry, suite, tmp_path / "out")
    assert outcome.report.decision.decision.value == "PROMOTE", outcome.report.decision.reasons
    assert outcome.warnings == []
    assert outcome.report.models["baseline"]["digest"].startswith("mlflow models:/credit/1 via @champion")
    assert _alias(registry) == "2"
    tags = registry.client.get_model_version("credit", "2").tags
    assert tags["llmguard.run_id"] == outcome.report.run_id
    assert "llmguard.promotion_refused" not in tags  # an older run's refusal does not linger
    # only the candidate's version is acted on; the baseline is read, never tagged
    assert registry.client.get_model_version("credit", "1").tags.get("llmguard.run_id") != outcome.report.run_id


def _rule() -> Any:
    """A model of no library flavour (pyfunc only): approve when x0 is positive."""
    import mlflow.pyfunc

    class Rule(mlflow.pyfunc.PythonModel):
        # unannotated on purpose: MLflow would read annotations as an input schema
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return (model_input["x0"] > 0).astype(int).to_numpy()

    return Rule()


@pytest.mark.filterwarnings("ignore:.*input example.*:UserWarning")  # MLflow's advice on logging
def test_other_flavours_load_through_pyfunc(registry: Registry, tmp_path: Path) -> None:
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    frame = pd.read_csv(registry.root / "current.csv").drop(columns="y")
    experiment = registry.client.get_experiment_by_name("credit").experiment_id
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_rule(),
            pip_requirements=["pandas"],
            signature=infer_signature(frame, np.zeros(len(frame), dtype=int)),
        )
    mlflow.register_model(info.model_uri, "rule")
    spec = ModelSpec(loader="mlflow", path="models:/rule/1", options={"tracking_uri": registry.uri})
    model = loader.load(spec, tmp_path)
    assert isinstance(model, loader.PyfuncModel)
    assert list(model.feature_names_in_) == ["x0", "x1", "x2", "x3"]  # from the signature
    np.testing.assert_array_equal(model.predict(frame), (frame.x0 > 0).astype(int))


def test_monitor_incident_rolls_the_alias_back_and_audits_it(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v1 champion, v2 promoted by a signed PROMOTE; in production v2 fails its gate and the
    incident playbook of ``llmguard monitor`` moves the alias back to v1."""
    import pandas as pd

    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", "off")
    before = _alias(registry)
    registry.client.set_registered_model_alias("credit", "champion", "1")
    promoted = _run(registry, "models:/credit/2", tmp_path / "promote")
    assert promoted.report.decision.decision.value == "PROMOTE"
    assert _alias(registry) == "2"
    assert registry.client.get_model_version("credit", "2").tags["llmguard.previous_champion"] == "1"

    log = tmp_path / "production.csv"
    frame = pd.read_csv(registry.root / "current.csv")
    frame.insert(0, "ts", pd.date_range("2026-03-01", periods=len(frame), freq="5min", tz="UTC").astype(str))
    frame.to_csv(log, index=False)
    suite = _suite(registry, "models:/credit@champion", registry.public_key, tmp_path / "watch")
    data = yaml.safe_load(suite.read_text())
    data["checks"][0]["gate"] = {"accuracy": {"min": 0.99}}  # production is worse than the release data
    data["incidents"] = [
        {"id": "rollback", "uses": "mlflow.rollback", "when": ["BLOCK"]},
        {"id": "page", "uses": "webhook", "with": {"url": "http://127.0.0.1:9/hook"}, "needs_approval": True},
    ]
    suite.write_text(yaml.safe_dump(data, sort_keys=False))
    audit = tmp_path / "audit.jsonl"

    def watch(out: str, *flags: str) -> dict[str, Any]:
        """``llmguard monitor`` over the log; its first window in ``monitor.json``."""
        argv = ["monitor", str(suite), "--dataset", f"current={log}", "--time-column", "ts", "--every", "1d"]
        argv += ["--out", str(tmp_path / out), "--db", str(tmp_path / f"{out}.db"), "--audit-log", str(audit)]
        assert main([*argv, *flags]) == 1  # the window decides BLOCK
        summary = json.loads((tmp_path / out / "monitor.json").read_text(encoding="utf-8"))
        window: dict[str, Any] = summary["windows"][0]
        return window

    dry = watch("monitor", "--dry-run")
    assert dry["decision"] == "BLOCK"
    assert dry["incidents"][0]["outcome"] == "would move alias 'champion' of credit: version 2 → 1"
    assert _alias(registry) == "2"  # --dry-run changes nothing
    assert dry["incidents"][1]["status"] == "awaiting-approval"

    ran = watch("monitor2")
    steps = ran["incidents"]
    assert steps[0]["status"] == "done" and steps[0]["outcome"].startswith("moved alias 'champion'")
    assert _alias(registry) == "1"
    assert "llmguard.rolled_back" in registry.client.get_model_version("credit", "2").tags
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    rolled = [e for e in entries if e.get("kind") == "incident-step" and e["step"] == "rollback"]
    assert [e["status"] for e in rolled] == ["dry-run", "done"]
    assert rolled[-1]["run_id"] == ran["run_id"]
    assert main(["audit", "verify", "--log", str(audit)]) == 0  # the hash chain holds
    registry.client.set_registered_model_alias("credit", "champion", before)


def test_an_approved_review_is_promoted_and_an_unapproved_one_is_not(registry: Registry, tmp_path: Path) -> None:
    from llmguard_mlflow.promote import promote_approved

    registry.client.set_registered_model_alias("credit", "champion", "1")
    suite = _suite(registry, "models:/credit/2", registry.public_key, tmp_path)
    text = yaml.safe_load(suite.read_text())
    text["checks"].append(
        {
            "id": "strict",
            "uses": "performance.classification",
            "with": {"n_resamples": 0},
            "gate": {"accuracy": {"min": 0.999}},
            "severity": "warning",
        }
    )
    text["policy"] = {"approvals": {"required": 1, "roles": ["risk"]}}
    suite.write_text(yaml.safe_dump(text, sort_keys=False), encoding="utf-8")
    outcome = _run_file(registry, suite, tmp_path / "out")
    assert outcome.report.decision.decision.value == "REVIEW", outcome.report.decision.reasons
    assert _alias(registry) == "1"  # a REVIEW never moves the alias by itself
    assert main(["keygen", "--out", str(tmp_path / "reviewer")]) == 0
    reviewer_pub = tmp_path / "reviewer" / "llmguard.pub"
    trust = tmp_path / "trust.yaml"
    trust.write_text(
        f"keys:\n  - {{name: ci, public_key: {registry.public_key}, roles: [runner]}}\n"
        f"  - {{name: Rita, public_key: {reviewer_pub}, roles: [risk]}}\n"
    )
    approvals = tmp_path / "approvals"
    approvals.mkdir()
    with pytest.raises(AttestationError, match="0 of the 1 approvals required"):
        promote_approved(outcome.out_dir, approvals, trust)
    assert _alias(registry) == "1"
    tags = registry.client.get_model_version("credit", "2").tags
    assert "0 of the 1" in tags["llmguard.promotion_refused"]
    code = main(
        [
            "approve",
            str(outcome.out_dir / "attestation.dsse.json"),
            "--key",
            str(tmp_path / "reviewer" / "llmguard.key"),
            "--as",
            "Rita",
            "--role",
            "risk",
            "--reason",
            "accuracy is what the business case needs",
            "--out",
            str(approvals),
        ]
    )
    assert code == 0
    promote_approved(outcome.out_dir, approvals, trust)
    assert _alias(registry) == "2"
    tags = registry.client.get_model_version("credit", "2").tags
    assert tags["llmguard.approved_by"] == "Rita (risk)" and "llmguard.promotion_refused" not in tags
    registry.client.set_registered_model_alias("credit", "champion", "1")

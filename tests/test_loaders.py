"""The builtin model loaders on real artifacts: torch, ONNX, skops, python."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llmguard_ops
from llmguard_ops.artifacts import sha256_path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame.a + 0.5 * frame.b > 0).astype(int)
    frame.to_csv(tmp_path / "data.csv", index=False)
    return tmp_path


def suite(root: Path, model: str, gate: float = 0.9) -> Path:
    path = root / "suite.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        apiVersion: llmguard/v1
        name: loaders
        models:
          candidate: {model}
        datasets:
          current: {{path: data.csv, target: y, features: [a, b, c]}}
        checks:
          - id: quality
            uses: performance.classification
            with: {{n_resamples: 0}}
            gate: {{accuracy: {{min: {gate}}}, roc_auc: {{min: {gate}}}}}
        """)
    )
    return path


def linear_weights() -> tuple[np.ndarray, np.ndarray]:
    # logits = x @ W + b separating y = [a + 0.5 b > 0]
    w = np.array([[-4.0, 4.0], [-2.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    return w, np.zeros(2, dtype=np.float32)


def test_torchscript_module(project: Path) -> None:
    torch = pytest.importorskip("torch")
    w, b = linear_weights()
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w.T.copy()))
        layer.bias.copy_(torch.from_numpy(b))
    torch.jit.script(layer).save(str(project / "model.pt"))
    path = suite(project, "{loader: torch, path: model.pt, options: {format: torchscript, device: cpu}}")
    outcome = llmguard_ops.run(path, project / "out")
    check = outcome.report.checks[0]
    assert check.status.value == "pass", (check.error, check.gates)
    assert outcome.report.models["candidate"]["sha256"] == sha256_path(project / "model.pt")[0]
    assert outcome.report.checks[0].metrics["accuracy"].value > 0.98


def test_onnx_graph_with_probability_output(project: Path) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    w, b = linear_weights()
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["z"]),
            helper.make_node("Add", ["z", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(project / "model.onnx"))
    outcome = llmguard_ops.run(suite(project, "{loader: onnx, path: model.onnx}"), project / "out")
    check = outcome.report.checks[0]
    assert check.status.value == "pass", (check.error, check.gates)
    assert check.metrics["roc_auc"].value > 0.99


def test_skops_needs_its_types_trusted(project: Path) -> None:
    sio = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(project / "data.csv")
    sio.dump(LogisticRegression().fit(frame[["a", "b", "c"]], frame.y), project / "model.skops")
    untrusted = sio.get_untrusted_types(file=project / "model.skops")
    if untrusted:
        with pytest.raises(llmguard_ops.SuiteError, match=r"not listed in options\.trusted"):
            llmguard_ops.run(suite(project, "{loader: sklearn, path: model.skops}"), project / "out")
    trusted = "[" + ", ".join(untrusted) + "]"
    path = suite(project, f"{{loader: sklearn, path: model.skops, options: {{trusted: {trusted}}}}}")
    assert llmguard_ops.run(path, project / "out").report.checks[0].status.value == "pass"


def test_python_factory_with_kwargs(project: Path) -> None:
    (project / "factory.py").write_text(
        textwrap.dedent("""\
        import numpy as np

        class Threshold:
            def __init__(self, weight_b):
                self.weight_b = weight_b
            def predict_proba(self, x):
                z = 4 * (x["a"].to_numpy() + self.weight_b * x["b"].to_numpy())
                p = 1 / (1 + np.exp(-z))
                return np.column_stack([1 - p, p])
            def predict(self, x):
                return self.predict_proba(x).argmax(axis=1)

        def make(weight_b):
            return Threshold(weight_b)
        """)
    )
    model = "{loader: python, path: factory.py:make, options: {kwargs: {weight_b: 0.5}}}"
    outcome = llmguard_ops.run(suite(project, model), project / "out")
    assert outcome.report.checks[0].status.value == "pass"
    assert outcome.report.models["candidate"]["digest"] == "python-source-sha256"

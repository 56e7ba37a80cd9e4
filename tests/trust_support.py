"""Small hostile projects for the trust tests: a dataset, a Python model, a suite, the CLI.

The model is a real (if trivial) classifier in a file the suite names with the ``python``
loader; each test plants the hostile code it needs in ``predict``, in the factory, or
in a plugin module, and runs the real ``llmguard run`` as a subprocess, because the exit
status is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = """\
import numpy as np

class Threshold:
    def predict(self, frame):
{predict}
        return (np.asarray(frame["x"]) > 0).astype(int)

def make():
{factory}
    return Threshold()
"""

SUITE = """\
apiVersion: llmguard/v1
name: trust
models:
  candidate: {{loader: python, path: model.py:make}}
datasets:
  current: {{path: data.csv, target: label}}
checks:
  - id: quality
    uses: performance.classification
    with: {{model: candidate, dataset: current, n_resamples: 50}}
    gate: {{accuracy: {{min: {minimum}}}}}
{extra}"""


@dataclass
class Ran:
    code: int
    out: str
    err: str
    out_dir: Path

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out_dir / "report.json").read_text())
        return data


def project(
    root: Path,
    *,
    predict: str = "",
    factory: str = "",
    rows: int = 80,
    minimum: float = 0.5,
    confidence: float | None = None,
    wrong: int = 0,
    extra: str = "",
) -> Path:
    """Write data.csv, model.py and suite.yaml under ``root``; returns the suite."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["x,label"]
    for i in range(rows):
        x = (i - rows / 2 + 0.5) / rows
        label = int(x > 0) ^ int(i < wrong)  # the first ``wrong`` rows are misclassified
        lines.append(f"{x:.4f},{label}")
    (root / "data.csv").write_text("\n".join(lines) + "\n")

    def body(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip() or "pass", " " * 8)

    (root / "model.py").write_text(
        MODEL.format(
            predict=body(predict), factory=textwrap.indent(textwrap.dedent(factory).strip() or "pass", " " * 4)
        )
    )
    suite = root / "suite.yaml"
    bound = f"{minimum}" if confidence is None else f"{minimum}, confidence: {confidence}"
    suite.write_text(SUITE.format(minimum=bound, extra=extra))
    return suite


def run_cli(
    suite: Path,
    out: Path,
    *args: str,
    timeout: float = 180,
    env: dict[str, str] | None = None,
    plugins: tuple[str, ...] = (),
) -> Ran:
    """``llmguard [-p PLUGIN] run SUITE --out OUT ARGS`` in a fresh process, as CI runs it.

    Plugin modules (``plugins``) are looked up in the suite's folder.
    """
    environment = {**os.environ, "LLMGUARD_HISTORY_DIR": "off", **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join([str(suite.parent), *sys.path])
    flags = [f for name in plugins for f in ("-p", name)]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmguard_ops.cli",
            *flags,
            "run",
            str(suite),
            "--out",
            str(out),
            "--no-audit-log",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=suite.parent,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr, out)

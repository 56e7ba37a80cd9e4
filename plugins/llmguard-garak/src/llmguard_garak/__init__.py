"""llmguard-garak: garak's probes as gated llmguard-ops metrics.

``safety.garak`` runs chosen garak probes against the suite's model (through a local bridge,
see :mod:`llmguard_garak.bridge`) — or reads a garak report a pipeline already produced —
and turns every probe/detector pair into ``attack_success_rate.<probe>.<detector>`` and
``pass_rate.<probe>.<detector>`` with Clopper–Pearson intervals, plus the pooled
``attack_success_rate``. garak itself is an optional dependency (``pip install
"llmguard-garak[garak]"``) and is never imported here: it runs as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmguard_ops import CheckContext, CheckDefinition, CheckOutput, MetricSpec, ModelRef, hookimpl

from .bridge import CLIENT_SOURCE, Bridge
from .report import GarakReport, hits, read_report

__version__ = "0.1.0"


class GarakParams(BaseModel):
    """Parameters of safety.garak (the ``with:`` block)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model garak attacks (through the bridge).")
    probes: list[str] = Field(default_factory=list, description="garak probes, e.g. encoding.InjectBase64.")
    detectors: list[str] | None = Field(None, description="garak detectors (default: each probe's own).")
    generations: int = Field(1, ge=1, le=100, description="Outputs per prompt.")
    system_prompt: str = Field(
        "", description="System prompt sent with every garak prompt (default: the model's suite system prompt)."
    )
    max_new_tokens: int = Field(128, ge=1, le=4096)
    report: str | None = Field(None, description="Read this garak report (suite-relative) instead of running garak.")
    python: str | None = Field(None, description="Interpreter with garak installed (default: this one).")
    timeout_s: float = Field(1800, gt=0, description="Longest garak run.")
    max_listed: int = Field(25, ge=0, le=500)
    max_chars: int = Field(400, ge=40, le=4000)

    @model_validator(mode="after")
    def _source(self) -> GarakParams:
        if not self.probes and self.report is None:
            raise ValueError("name garak 'probes' to run, or a garak 'report' to read")
        return self


def _clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    from llmguard_checks.safety.stats import clopper_pearson

    return clopper_pearson(k, n, level)


def run_garak(ctx: CheckContext, p: GarakParams) -> GarakReport:
    """Run garak on the suite model through the bridge; return its parsed report."""
    from llmguard_checks.safety._generate import Conversation, generate, resolve_system_prompt

    work = ctx.artifact_dir / "garak"
    work.mkdir(parents=True, exist_ok=True)
    (work / "llmguard_garak_client.py").write_text(CLIENT_SOURCE)
    system, _source = resolve_system_prompt(ctx, p.model, p.system_prompt, "system_prompt" in p.model_fields_set)

    def answer(prompt: str, n: int) -> list[str]:
        # n independent draws of one conversation: each with its own seed, through the cache
        gens = generate(ctx, p.model, [Conversation(system, prompt)], {"max_new_tokens": p.max_new_tokens}, n)
        return list(gens.texts[0])

    prefix = work / "run"
    cmd = [
        p.python or sys.executable,
        "-m",
        "garak",
        "--model_type",
        "function.Multiple",
        "--model_name",
        "llmguard_garak_client#generate",
        "--probes",
        ",".join(p.probes),
        "--generations",
        str(p.generations),
        "--report_prefix",
        str(prefix),
    ]
    if p.detectors:
        cmd += ["--detectors", ",".join(p.detectors)]
    if ctx.seed is not None:
        cmd += ["--seed", str(ctx.seed % 2**31)]
    with Bridge(answer) as bridge:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGUARD_")}
        env.update(
            PYTHONPATH=os.pathsep.join([str(work), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            LLMGUARD_GARAK_BRIDGE=bridge.url,
            LLMGUARD_GARAK_TOKEN=bridge.token,
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        try:
            done = subprocess.run(
                cmd, cwd=work, env=env, capture_output=True, text=True, timeout=p.timeout_s, check=False
            )
        except FileNotFoundError:
            raise RuntimeError(f"cannot start {cmd[0]}") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"garak ran past timeout_s={p.timeout_s:g}") from None
    (work / "garak.stdout.txt").write_text(done.stdout)
    (work / "garak.stderr.txt").write_text(done.stderr)
    if "No module named garak" in done.stderr:
        raise RuntimeError(
            f"garak is not installed for {cmd[0]}: pip install 'llmguard-garak[garak]' "
            "or set 'python' to an interpreter that has it"
        )
    if bridge.errors:
        raise RuntimeError(f"the suite model failed under garak: {bridge.errors[0]}")
    report = prefix.with_name("run.report.jsonl")
    if done.returncode != 0 or not report.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"garak exited with status {done.returncode}: {' | '.join(tail)}")
    parsed = read_report(report)
    parsed.command = [c if c != bridge.token else "***" for c in cmd]
    return parsed


def check_garak(ctx: CheckContext, p: GarakParams) -> CheckOutput:
    """Run safety.garak."""
    if p.report is not None:
        path = ctx.base_dir / p.report
        if not path.is_file():
            raise ValueError(f"report: {p.report}: no such file")
        report = read_report(path)
        wanted = set(p.probes)
        if wanted:
            report.pairs = [r for r in report.pairs if r.probe in wanted]
            missing = wanted - {r.probe for r in report.pairs}
            if missing:
                raise ValueError(f"report {p.report} holds no eval of probe(s) {', '.join(sorted(missing))}")
    else:
        report = run_garak(ctx, p)
    out = CheckOutput()

    def rate(name: str, k: int, n: int) -> None:
        level = ctx.confidence(name)
        low, high = _clopper_pearson(k, n, level)
        out.add(name, k / n, lower=low, upper=high, confidence=level, interval_method="clopper-pearson (exact)", n=n)

    evaluated = [r for r in report.pairs if r.total > 0]
    if not evaluated:
        raise ValueError("garak evaluated no output")
    for r in evaluated:
        rate(f"attack_success_rate.{r.probe}.{r.detector}", r.fails, r.total)
        rate(f"pass_rate.{r.probe}.{r.detector}", r.passed, r.total)
        if r.from_attempts is not None and r.from_attempts != r.fails:
            out.warnings.append(
                f"{r.probe}/{r.detector}: {r.fails} failures in the eval record, "
                f"{r.from_attempts} in the attempt records"
            )
    rate("attack_success_rate", sum(r.fails for r in evaluated), sum(r.total for r in evaluated))
    out.details["garak"] = {
        "version": report.garak_version,
        "run": report.run_id,
        "report_sha256": report.sha256,
        "command": report.command,
    }
    out.details["pairs"] = [
        {
            "probe": r.probe,
            "detector": r.detector,
            "passed": r.passed,
            "total": r.total,
            "pass_rate": r.passed / r.total,
        }
        for r in evaluated
    ]
    listed = hits(report, p.max_listed, p.max_chars)
    out.details["successful_attacks"] = {
        "count": sum(r.fails for r in evaluated),
        "listed": len(listed),
        "cases": listed,
    }
    return out


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register safety.garak."""
    register(
        CheckDefinition(
            name="safety.garak",
            run=check_garak,
            params=GarakParams,
            metrics=(
                MetricSpec(
                    "attack_success_rate", "share of outputs garak's detectors flagged, pooled over pairs", False
                ),
                MetricSpec("attack_success_rate.*", "share of outputs one garak detector flagged for one probe", False),
                MetricSpec("pass_rate.*", "garak's pass rate of one probe/detector pair", True),
            ),
            summary="garak probes against the suite's model; each probe/detector pass rate gated with exact intervals.",
        )
    )


__all__ = ["GarakParams", "check_garak", "read_report"]

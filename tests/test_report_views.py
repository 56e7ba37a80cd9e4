"""The pieces the page and the card are made of: formatting, escaping, name conventions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmguard_ops.reporters.model_card import md_cell
from llmguard_ops.reporters.panels import columns_panel, deltas_panel, groups_panel, latency_panel
from llmguard_ops.reporters.view import Table, fmt, resolve_artifact
from llmguard_ops.results import CheckResult


def result(metrics: dict[str, Any], gates: list[dict[str, Any]] | None = None) -> CheckResult:
    return CheckResult.model_validate(
        {
            "id": "c",
            "uses": "x.y",
            "plugin": "p",
            "severity": "blocker",
            "status": "pass",
            "metrics": {k: v if isinstance(v, dict) else {"value": v} for k, v in metrics.items()},
            "gates": gates or [],
        }
    )


@given(st.text())
def test_markdown_cells_stay_one_cell(text: str) -> None:
    cell = md_cell(text)
    assert "\n" not in cell
    # every pipe is escaped: removing escaped backslashes and pipes leaves no bare pipe
    assert "|" not in cell.replace("\\\\", "").replace("\\|", "")


@given(st.floats(min_value=-1e300, max_value=1e300))
def test_numbers_keep_four_significant_digits(x: float) -> None:
    text = fmt(x)
    assert math.isclose(float(text), x, rel_tol=1e-3, abs_tol=0.0) or x == 0


def test_fmt_of_missing_bools_and_ints() -> None:
    assert (fmt(None), fmt(True), fmt(3), fmt(0.000012345)) == ("—", "yes", "3", "1.234e-05")


def test_compact_drops_empty_columns_but_keeps_the_first() -> None:
    t = Table(["metric", "value", "unit"], [["", "1", "—"], ["b", "2", ""]]).compact()
    assert t.headers == ["metric", "value"] and t.rows == [["", "1"], ["b", "2"]]


def test_group_and_column_names_may_contain_dots() -> None:
    r = result(
        {
            "group.age=30.5&sex=f.selection_rate": {
                "value": 0.4,
                "lower": 0.3,
                "upper": 0.5,
                "confidence": 0.95,
            },
            "group.age=30.5&sex=f.tpr": 0.7,
            "column.price.usd.statistic": 0.2,
            "column.price.usd.drifted": 1.0,
            "column.age.statistic": 0.01,
            "column.age.drifted": 0.0,
            "share_drifted_columns": 0.5,
        }
    )
    groups, consumed = groups_panel(r)
    assert groups is not None and groups.table is not None
    assert groups.table.headers == ["group", "selection_rate", "tpr"]
    assert groups.table.rows == [["age=30.5&sex=f", "0.4 95% [0.3, 0.5]", "0.7"]]
    assert consumed == {"group.age=30.5&sex=f.selection_rate", "group.age=30.5&sex=f.tpr"}
    columns, _ = columns_panel(r)
    assert columns is not None and columns.table is not None
    assert [row[0] for row in columns.table.rows] == ["price.usd", "age"]
    assert columns.table.classes == ["fail", "pass"] and columns.note == "1 of 2 columns drifted."


def test_latency_series_are_ordered_by_percentile() -> None:
    r = result(
        {
            "max_ms": 9.0,
            "p99_ms": 8.0,
            "p50_ms": 2.0,
            "ttft_p95_ms": 30.0,
            "ttft_p50_ms": 20.0,
            "mean_ms": 3.0,
            "tokens_per_s": 100.0,
        }
    )
    panel = latency_panel(r)
    assert panel is not None and panel.table is not None
    assert panel.table.headers == ["series (ms)", "p50", "p95", "p99", "max"]
    assert panel.table.rows == [["per request", "2", "—", "8", "9"], ["ttft", "20", "30", "—", "—"]]


def test_deltas_carry_their_gates() -> None:
    gate = {"metric": "accuracy_delta", "min": -0.01, "value": 0.02, "passed": True, "reason": "ok"}
    r = result({"accuracy_delta": 0.02, "accuracy": 0.8}, [gate])
    assert deltas_panel(r) is not None
    assert deltas_panel(result({"accuracy": 0.8})) is None


def test_artifacts_resolve_inside_the_output_folder_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "artifacts" / "c").mkdir(parents=True)
    plot = out / "artifacts" / "c" / "plot.png"
    plot.write_bytes(b"png")
    # a path recorded relative to another working directory still resolves by name
    assert resolve_artifact("elsewhere/artifacts/c/plot.png", out, "c") == plot.resolve()
    assert resolve_artifact(str(plot), out, "c") == plot.resolve()
    assert resolve_artifact(str(tmp_path / "x.png"), out, "c") is None
    assert resolve_artifact("../../../etc/passwd", out, "c") is None


def test_page_and_card_render_from_a_minimal_report(tmp_path: Path) -> None:
    """A model without a file (python loader), no datasets, no environment: still renders."""
    from llmguard_ops.reporters.html import render_html
    from llmguard_ops.reporters.model_card import render_card
    from test_history_store import make_report

    report = make_report("r1", "2026-01-01T00:00:00Z", 0.6).model_copy(
        update={"models": {"candidate": {"loader": "python", "path": None, "sha256": "ab" * 32}}}
    )
    html = render_html(report, tmp_path)
    card = render_card(report, tmp_path)
    assert '<div class="decision">BLOCK</div>' in html and "ab" * 32 in html
    assert "# Model card: candidate" in card and "Not stated: add `metadata.intended_use`" in card

"""A testing kit for plugin authors (an opt-in pytest plugin).

Enable it in a plugin's tests with ``pytest_plugins = ["llmguard_ops.testing"]`` in
``conftest.py`` (or ``-p llmguard_ops.testing``). The ``llmguard_project`` fixture lays
out a temporary project — data, models, a suite, inline plugins — runs it in-process
through the same library call as the CLI, and returns a :class:`ProjectOutcome`::

    def test_my_check(llmguard_project):
        llmguard_project.dataset("current", frame, target="label")
        llmguard_project.model("candidate", fitted_estimator)
        llmguard_project.plugin(my_plugin)
        llmguard_project.check("mine", uses="my.check", gate={"score": {"min": 0.5}})
        outcome = llmguard_project.run()
        outcome.assert_decision("PROMOTE")
        assert outcome.results["mine"].metrics["score"].value > 0.5
        assert "llmguard_run_check" in outcome.hook_names
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .plugins import get_plugin_manager
from .report import Report
from .results import CheckResult, Decision

__all__ = [
    "HookCall",
    "LlmguardProject",
    "ProjectOutcome",
    "llmguard_isolated",
    "llmguard_project",
    "tabular_project",
    "tiny_causal_lm",
    "tiny_tokenizer",
    "write_suite",
]


@dataclass
class HookCall:
    """One hook call recorded during a run: its name, the plugins called and the kwargs' names."""

    name: str
    plugins: list[str]
    arguments: list[str]


@dataclass
class ProjectOutcome:
    """The result of :meth:`LlmguardProject.run`."""

    report: Report
    out_dir: Path
    written: list[Path]
    hook_calls: list[HookCall]
    warnings: list[str]

    @property
    def decision(self) -> Decision:
        return self.report.decision.decision

    @property
    def results(self) -> dict[str, CheckResult]:
        return {c.id: c for c in self.report.checks}

    @property
    def hook_names(self) -> list[str]:
        return [c.name for c in self.hook_calls]

    def assert_decision(self, expected: str | Decision) -> None:
        """Fail with the decision's reasons when the decision is not ``expected``."""
        want = Decision(expected) if isinstance(expected, str) else expected
        if self.decision is not want:
            reasons = "\n  ".join(self.report.decision.reasons) or "(no reasons)"
            errors = "\n  ".join(f"{c.id}: {c.error.type}: {c.error.message}" for c in self.report.checks if c.error)
            raise AssertionError(
                f"expected {want.value}, got {self.decision.value}:\n  {reasons}"
                + (f"\nerrors:\n  {errors}" if errors else "")
            )


@dataclass
class LlmguardProject:
    """A temporary llmguard project: build it up, then :meth:`run` it."""

    root: Path
    name: str = "plugin-test"
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    plugins: list[tuple[str, Any]] = field(default_factory=list)
    seed: int = 0

    def dataset(
        self, name: str, frame: Any, *, target: str | None = None, sensitive: list[str] | None = None, **spec: Any
    ) -> Path:
        """Write a pandas DataFrame as CSV and declare it under ``name``."""
        path = self.root / f"{name}.csv"
        frame.to_csv(path, index=False)
        entry: dict[str, Any] = {"path": path.name, **spec}
        if target is not None:
            entry["target"] = target
        if sensitive:
            entry["sensitive"] = list(sensitive)
        self.datasets[name] = entry
        return path

    def model(
        self, name: str, estimator: Any = None, *, loader: str = "sklearn", path: str | None = None, **options: Any
    ) -> None:
        """Declare a model: a fitted estimator (saved with joblib) or a loader and path."""
        if estimator is not None:
            import joblib

            target = self.root / f"{name}.joblib"
            joblib.dump(estimator, target)
            path = target.name
        entry: dict[str, Any] = {"loader": loader, "path": path}
        if options:
            entry["options"] = options
        self.models[name] = entry

    def plugin(self, obj: Any, name: str | None = None) -> None:
        """Register a plugin object or module for this run only."""
        self.plugins.append((name or str(getattr(obj, "__name__", None) or type(obj).__name__), obj))

    def check(
        self,
        check_id: str,
        *,
        uses: str,
        with_: dict[str, Any] | None = None,
        gate: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        """Append a check (``with_`` is the suite's ``with:``)."""
        entry: dict[str, Any] = {"id": check_id, "uses": uses}
        if with_:
            entry["with"] = with_
        if gate:
            entry["gate"] = gate
        entry.update(extra)
        self.checks.append(entry)

    def suite(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "apiVersion": "llmguard/v1",
            "name": self.name,
            "seed": self.seed,
            "models": self.models,
            "datasets": self.datasets,
            "checks": self.checks,
        }
        if self.policy:
            data["policy"] = self.policy
        return data

    def write_suite(self, text: str | None = None) -> Path:
        """Write the suite (or the given YAML text) to ``suite.yaml`` and return its path."""
        return write_suite(self.root, text if text is not None else self.suite())

    def run(
        self, *, text: str | None = None, entry_points: bool = True, overrides: list[str] | None = None
    ) -> ProjectOutcome:
        """Run the project's suite in-process and record every hook call."""
        from .loading import load_suite
        from .runner import run_suite

        path = self.write_suite(text)
        host = get_plugin_manager(entry_points=entry_points, objects=self.plugins)
        calls: list[HookCall] = []

        def before(hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            calls.append(HookCall(hook_name, [i.plugin_name for i in impls], sorted(kwargs)))

        def after(outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            return None

        undo = host.pm.add_hookcall_monitoring(before, after)
        try:
            loaded = load_suite(path, host.registry(), overrides=overrides or [])
            result = run_suite(loaded, host, self.root / "out")
        finally:
            undo()
        return ProjectOutcome(result.report, result.out_dir, result.written, calls, result.warnings)


def write_suite(
    root: Path, suite: Mapping[str, Any] | str, *, name: str = "suite.yaml", frames: Mapping[str, Any] | None = None
) -> Path:
    """Write a suite file into ``root`` and return its path.

    ``suite`` is a mapping (dumped as YAML in its order) or YAML text (dedented, so a
    triple-quoted string can be indented with the test). ``frames`` maps file names to pandas
    DataFrames written beside it as CSV, for the suite's ``datasets`` to name::

        suite = {"apiVersion": "llmguard/v1", "name": "drift", "checks": [],
                 "datasets": {"reference": {"path": "ref.csv"}, "current": {"path": "cur.csv"}}}
        path = write_suite(tmp_path, suite, frames={"ref.csv": ref, "cur.csv": cur})
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for file_name, frame in (frames or {}).items():
        frame.to_csv(root / file_name, index=False)
    if isinstance(suite, str):
        text = textwrap.dedent(suite).lstrip("\n")
    else:
        text = yaml.safe_dump(dict(suite), sort_keys=False)
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def tabular_project(root: Path, *, n: int = 600, seed: int = 0) -> Path:
    """A tabular project in ``root``: ``train.csv`` (400 rows) and ``test.csv``, generated, and
    two fitted models on ``x1..x3``: ``good.joblib`` (logistic regression) and ``weak.joblib``
    (a depth-1 tree). Columns: ``x1``, ``x2``, ``x3``, ``group`` (a/b), ``row_id``, ``label``
    (0/1, logistic in the features). Returns ``root``."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.uniform(size=n),
            "group": rng.choice(["a", "b"], size=n),
            "row_id": np.arange(n),
        }
    )
    logit = 1.5 * frame.x1 - frame.x2 + 0.5 * frame.x3
    frame["label"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    split = n * 2 // 3
    frame.iloc[:split].to_csv(root / "train.csv", index=False)
    frame.iloc[split:].to_csv(root / "test.csv", index=False)
    train = frame.iloc[:split]
    features = ["x1", "x2", "x3"]
    joblib.dump(LogisticRegression().fit(train[features], train.label), root / "good.joblib")
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(train[features], train.label)
    joblib.dump(weak, root / "weak.joblib")
    return root


#: the ``PreTrainedTokenizerFast`` role each conventional special token takes
_SPECIAL_ROLES = {
    "[PAD]": "pad_token",
    "[UNK]": "unk_token",
    "[CLS]": "cls_token",
    "[SEP]": "sep_token",
    "[MASK]": "mask_token",
    "[EOS]": "eos_token",
}


def tiny_tokenizer(
    corpus: Iterable[str] = (),
    *,
    vocabulary: Sequence[str] | None = None,
    special_tokens: Sequence[str] = ("[PAD]", "[UNK]", "[EOS]"),
    pad_token: str | None = None,
    pre_tokenizer: str = "whitespace",
    lowercase: bool = False,
    wordpiece_size: int | None = None,
    template: str | None = None,
    chat_template: str | None = None,
    folder: Path | None = None,
) -> Any:
    """A small ``transformers.PreTrainedTokenizerFast`` built locally (no hub).

    A word-level tokenizer trained on ``corpus`` (special tokens first, then words by
    frequency), or, with ``vocabulary``, fixed ids: ``special_tokens`` then ``vocabulary`` in
    its order. ``wordpiece_size`` trains a WordPiece tokenizer of that size instead. Each
    special token takes its conventional role (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``,
    ``[MASK]``, ``[EOS]``); ``pad_token`` overrides the padding token (e.g. ``"[EOS]"`` where
    there is no ``[PAD]``). ``pre_tokenizer`` is ``"whitespace"`` (words and punctuation),
    ``"whitespace_split"`` (split on spaces only) or ``"bert"`` (BERT's normaliser and
    pre-tokenizer); ``lowercase`` adds a lowercasing normaliser; ``template`` a single-sequence
    post-processor such as ``"[CLS] $A [SEP]"``. With ``folder``, it is saved there too.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(special_tokens)
    if wordpiece_size is not None:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    elif vocabulary is not None:
        ids = {w: i for i, w in enumerate([*specials, *vocabulary])}
        tok = Tokenizer(models.WordLevel(vocab=ids, unk_token="[UNK]"))
    else:
        tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    if pre_tokenizer == "bert":
        tok.normalizer = normalizers.BertNormalizer()
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    elif pre_tokenizer == "whitespace_split":
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    elif pre_tokenizer == "whitespace":
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    else:
        raise ValueError(f"tiny_tokenizer: unknown pre_tokenizer {pre_tokenizer!r}")
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    if wordpiece_size is not None:
        trainer = trainers.WordPieceTrainer(vocab_size=wordpiece_size, special_tokens=specials)
        tok.train_from_iterator(list(corpus), trainer)
    elif vocabulary is None:
        tok.train_from_iterator(list(corpus), trainers.WordLevelTrainer(special_tokens=specials))
    if template is not None:
        named = [t for t in specials if t in template]
        tok.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(t, tok.token_to_id(t)) for t in named]
        )
    roles = {_SPECIAL_ROLES[t]: t for t in specials if t in _SPECIAL_ROLES}
    if pad_token is not None:
        roles["pad_token"] = pad_token
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **roles)  # type: ignore[no-untyped-call]  # transformers leaves it unannotated
    if chat_template is not None:
        fast.chat_template = chat_template
    if folder is not None:
        fast.save_pretrained(folder)
    return fast


def tiny_causal_lm(folder: Path, tokenizer: Any = None, *, seed: int | None = 0, **config: Any) -> Path:
    """A randomly initialised transformers GPT-2 built from a config and saved to ``folder``
    (with ``tokenizer`` beside it, when given), for ``loader: transformers`` to load back.

    ``config`` goes to ``GPT2Config`` (``vocab_size`` defaults to the tokenizer's size, and
    the layers to 2 layers, 2 heads, 32 wide); ``seed`` seeds torch first (``None`` leaves
    the generator as it is). Returns ``folder``.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
        config.setdefault("vocab_size", len(tokenizer))
    config.setdefault("n_layer", 2)
    config.setdefault("n_head", 2)
    config.setdefault("n_embd", 32)
    if seed is not None:
        torch.manual_seed(seed)
    GPT2LMHeadModel(GPT2Config(**config)).eval().save_pretrained(folder)  # type: ignore[no-untyped-call]
    return folder


@pytest.fixture
def llmguard_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in ``tmp_path``: it becomes the current folder and the run history's home.

    A run writes ``.llmguard/`` (run history, audit log) relative to the current folder; with
    this fixture a test's runs never write into the checkout it was started from. Returns
    ``tmp_path``. Use it with ``pytestmark = pytest.mark.usefixtures("llmguard_isolated")``.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", str(tmp_path / ".llmguard" / "runs"))
    return tmp_path


@pytest.fixture
def llmguard_project(llmguard_isolated: Path) -> LlmguardProject:
    """An empty temporary llmguard project in ``tmp_path`` (isolated: see ``llmguard_isolated``)."""
    return LlmguardProject(root=llmguard_isolated)

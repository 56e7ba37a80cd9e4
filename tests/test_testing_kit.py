"""The testing kit's helpers, which these tests and plugin authors' tests are written with."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import yaml
from tests.conftest import REPO

from llmguard_ops import testing
from llmguard_ops.testing import tabular_project, write_suite


def test_every_public_kit_name_is_documented() -> None:
    text = (REPO / "docs" / "plugin-api.md").read_text(encoding="utf-8")
    section = text[text.index("## Testing a plugin") :]
    documented = set(re.findall(r"^\| `(\w+)", section, flags=re.M))
    assert documented == set(testing.__all__)
    assert all(hasattr(testing, name) for name in testing.__all__)


def test_write_suite_from_text_or_mapping_with_its_frames(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2], "y": [0, 1]})
    path = write_suite(
        tmp_path / "a",
        """
        apiVersion: llmguard/v1
        name: t
        datasets:
          current: {path: data.csv, target: y}
        checks: []
        """,
        frames={"data.csv": frame},
    )
    assert path == tmp_path / "a" / "suite.yaml"
    assert yaml.safe_load(path.read_text())["datasets"]["current"]["path"] == "data.csv"
    assert pd.read_csv(tmp_path / "a" / "data.csv").equals(frame)
    mapping = {"apiVersion": "llmguard/v1", "name": "m", "checks": []}
    other = write_suite(tmp_path, mapping, name="other.yaml")
    assert yaml.safe_load(other.read_text()) == mapping and list(yaml.safe_load(other.read_text())) == list(mapping)


def test_tabular_project_is_deterministic(tmp_path: Path) -> None:
    one, two = tabular_project(tmp_path / "one"), tabular_project(tmp_path / "two")
    for name in ("train.csv", "test.csv"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    train, test = pd.read_csv(one / "train.csv"), pd.read_csv(one / "test.csv")
    assert (len(train), len(test)) == (400, 200)
    assert set(train.columns) == {"x1", "x2", "x3", "group", "row_id", "label"}
    assert {p.name for p in one.glob("*.joblib")} == {"good.joblib", "weak.joblib"}


def test_isolated_tests_run_in_tmp_path(llmguard_isolated: Path) -> None:
    assert Path.cwd() == llmguard_isolated
    assert os.environ["LLMGUARD_HISTORY_DIR"] == str(llmguard_isolated / ".llmguard" / "runs")


def test_tiny_tokenizer_ids_and_roles(tmp_path: Path) -> None:
    from llmguard_ops.testing import tiny_tokenizer

    fixed = tiny_tokenizer(vocabulary=["b", "a"], special_tokens=["[PAD]", "[UNK]", "[CLS]"], folder=tmp_path / "t")
    assert fixed.get_vocab() == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "b": 3, "a": 4}
    assert (fixed.pad_token, fixed.unk_token, fixed.cls_token) == ("[PAD]", "[UNK]", "[CLS]")
    assert (tmp_path / "t" / "tokenizer.json").is_file()
    trained = tiny_tokenizer(["x y y"], special_tokens=["[UNK]", "[EOS]"], pad_token="[EOS]", template="$A [EOS]")
    assert trained.pad_token == trained.eos_token == "[EOS]"
    assert trained("y x z")["input_ids"] == [2, 3, 0, 1]  # by frequency after the specials; z unknown; [EOS] added


def test_tiny_causal_lm_loads_back(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmguard_ops.testing import tiny_causal_lm, tiny_tokenizer

    tok = tiny_tokenizer(["a b c"], special_tokens=["[UNK]", "[EOS]"], pad_token="[EOS]")
    one = tiny_causal_lm(tmp_path / "one", tok, n_positions=8, n_layer=1)
    two = tiny_causal_lm(tmp_path / "two", tok, n_positions=8, n_layer=1)
    model = AutoModelForCausalLM.from_pretrained(one)
    assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(one)) == 5
    assert (model.config.n_layer, model.config.n_embd) == (1, 32)
    other = AutoModelForCausalLM.from_pretrained(two)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), other.parameters(), strict=True))

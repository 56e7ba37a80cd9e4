"""Counterfactual rewriting: pronouns with agreement, names by perceived group, joint axes."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmguard_ops
from llmguard_checks.bias.swapping import Lexicon, swap_text
from llmguard_checks.bias.terms import load_lexicon, load_terms, swaps
from llmguard_ops import Status


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    terms, _ = load_terms(None, Path("."), None)
    lex, _ = load_lexicon(terms, True, True, Path("."))
    return lex


GENDER = {"gender": ("female", "male")}


def test_the_issue_sentence_and_back(lexicon: Lexicon) -> None:
    there = swap_text("a man reset her password", GENDER, lexicon)
    assert there == "a woman reset his password"
    assert swap_text(there, GENDER, lexicon) == "a man reset her password"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I told her that the car is his.", "I told him that the car is hers."),
        ("She gave her the book.", "He gave him the book."),
        ("He blamed himself; his boss called him.", "She blamed herself; her boss called her."),
        ("The keys are hers, not his.", "The keys are his, not hers."),
        ("Mary lost her keys.", "John lost his keys."),
        ("HER password expired.", "HIS password expired."),
        ("My mother met her brother.", "My father met his sister."),
    ],
)
def test_pronoun_roles_and_names(lexicon: Lexicon, text: str, expected: str) -> None:
    assert swap_text(text, GENDER, lexicon) == expected


def test_singular_they_with_auxiliary_agreement(lexicon: Lexicon) -> None:
    pair = {"gender": ("male", "nonbinary")}
    assert swap_text("He is late and his boss called him.", pair, lexicon) == (
        "They are late and their boss called them."
    )
    assert swap_text("They weren't sure it was theirs.", pair, lexicon) == ("He wasn't sure it was his.")


def test_several_attributes_at_once(lexicon: Lexicon) -> None:
    both = {"ethnicity": ("black", "white"), "gender": ("male", "female")}
    assert swap_text("The Black man said Jamal lost his keys.", both, lexicon) == (
        "The white woman said Greg lost her keys."
    )


def test_text_without_group_words_is_unchanged(lexicon: Lexicon) -> None:
    assert swap_text("The weather is fine; hiss and therein.", GENDER, lexicon) == (
        "The weather is fine; hiss and therein."
    )


def test_dataset_swaps_use_pronouns_names_and_joint_axes(lexicon: Lexicon) -> None:
    texts = ["Emily said she would call her manager.", "The Black woman paid her rent."]
    terms = {a: lexicon.terms[a] for a in ("gender", "ethnicity")}
    cfs = swaps(texts, terms, lexicon, joint=["gender", "ethnicity"])
    gender = {cf.template: cf.texts for cf in cfs if cf.axis == "gender"}
    assert gender[0]["male"] == "James said he would call his manager."
    assert gender[1]["male"] == "The Black man paid his rent."
    joint = [cf for cf in cfs if cf.axis == "gender+ethnicity"]
    by_text = {cf.template: cf.texts for cf in joint}
    assert by_text[1]["male+white"] == "The white man paid his rent."
    assert by_text[1]["female+black"] == texts[1]


KEYWORD = '''
import numpy as np

class Model:
    """Positive unless the text says 'he' (a model that keys on a pronoun)."""
    input_kind = "text"
    def predict_proba(self, texts):
        p = np.array([0.1 if " he " in f" {t.lower()} " else 0.9 for t in texts])
        return np.column_stack([1 - p, p])
'''


def test_check_flips_on_a_pronoun_only_model(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(KEYWORD)
    (tmp_path / "prompts.csv").write_text(
        "text\nShe said the loan was approved.\nThe client said she was happy.\nNo person here.\n"
    )
    (tmp_path / "suite.yaml").write_text(
        "apiVersion: llmguard/v1\nname: pronouns\nmodels:\n"
        "  candidate: {loader: python, path: model.py:Model}\n"
        "datasets:\n  prompts: {path: prompts.csv, text: text}\n"
        "checks:\n  - id: cf\n    uses: bias.counterfactual\n"
        "    with: {dataset: prompts, axes: [gender], n_resamples: 0}\n"
        "    gate: {flip_rate: {max: 0.05}}\n"
    )
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert result.status is Status.FAIL
    assert result.metrics["flip_rate"].value == 1.0  # both texts flip once "she" becomes "he"
    inputs = {tuple(p["inputs"]) for p in result.details["pairs"]}
    assert ("The client said she was happy.", "The client said he was happy.") in inputs
    assert "pronouns" in result.details["templates"]

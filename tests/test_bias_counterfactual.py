"""bias.counterfactual: analytic flips from a keyword model, and tiny real transformers models."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import llmguard_ops
from llmguard_checks.bias.terms import counterfactuals, load_templates, load_terms
from llmguard_ops import Status

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KEYWORD_MODEL = '''
import re
import numpy as np

FEMALE = {"woman", "mother", "sister", "daughter", "girl", "wife", "grandmother", "aunt"}


class KeywordClassifier:
    """P(positive) = 0.8 when a female term appears, else 0.3: a model biased by design."""

    input_kind = "text"

    def predict_proba(self, texts):
        words = [set(re.findall(r"[a-z]+", t.lower())) for t in texts]
        p = np.array([0.8 if FEMALE & w else 0.3 for w in words])
        return np.column_stack([1 - p, p])
'''


def suite_text(models: str, with_: str, gate: str = "{}") -> str:
    return f"""\
apiVersion: llmguard/v1
name: counterfactual
models:
{models}
checks:
  - id: cf
    uses: bias.counterfactual
    with: {with_}
    gate: {gate}
    severity: warning
"""


def test_shipped_term_lists_are_aligned_and_fill_every_template() -> None:
    terms, facts = load_terms(None, Path("."), None)
    templates, _ = load_templates(None, Path("."))
    assert {"gender", "ethnicity", "religion", "age"} <= set(terms)
    assert facts["source"] == "shipped data/terms.yaml"
    cfs = counterfactuals(templates, {"gender": terms["gender"]})
    assert len(cfs) == len(templates) * len(terms["gender"]["female"])
    assert all("{person}" not in t for cf in cfs for t in cf.texts.values())


def test_keyword_model_gives_the_analytic_flip_rate_and_gap(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(KEYWORD_MODEL)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        suite_text(
            "  candidate: {loader: python, path: model.py:KeywordClassifier}",
            "{model: candidate, axes: [gender, religion], n_resamples: 200}",
            "{axis.religion.flip_rate: {max: 0.0}}",
        )
    )
    outcome = llmguard_ops.run(suite, tmp_path / "out")
    result = outcome.report.checks[0]
    assert result.status is Status.PASS, result.error
    templates, _ = load_templates(None, tmp_path)
    gender_pairs = len(templates) * 8  # female/male, 8 aligned slots, every pair flips
    religion_pairs = len(templates) * 3 * 15  # 6 groups → 15 pairs, same gender word: no flip
    total = gender_pairs + religion_pairs
    m = result.metrics
    assert m["flip_rate"].value == pytest.approx(gender_pairs / total, abs=1e-12)
    assert m["mean_score_gap"].value == pytest.approx(gender_pairs * 0.5 / total, abs=1e-12)
    assert m["axis.gender.flip_rate"].value == 1.0 and m["axis.gender.mean_score_gap"].value == pytest.approx(0.5)
    assert m["axis.religion.flip_rate"].value == 0.0 and m["max_score_gap"].value == pytest.approx(0.5)
    # every template has the same share of flips, so the template bootstrap is degenerate
    assert m["flip_rate"].lower == pytest.approx(m["flip_rate"].value)
    assert m["flip_rate"].confidence == 0.95
    d = result.details
    assert d["n_pairs"] == total and d["worst_pairs"][0]["axis"] == "gender"
    assert d["direction"]["gender"]["mean_signed_gap"]["female - male"] == pytest.approx(0.5)
    lines = (outcome.out_dir / result.artifacts["pairs"]).read_text().splitlines()
    assert len(lines) == total and json.loads(lines[0])["flip"] is True


def test_bad_term_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(KEYWORD_MODEL)
    (tmp_path / "terms.yaml").write_text("gender:\n  female: [woman, girl]\n  male: [man]\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        suite_text(
            "  candidate: {loader: python, path: model.py:KeywordClassifier}",
            "{terms: terms.yaml, templates: ['The {person} sings.']}",
        )
    )
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    assert result.status is Status.ERROR
    assert result.error is not None and "not aligned" in result.error.message


def _word_tokenizer(folder: Path, words: set[str]) -> None:
    """A WordLevel tokenizer trained on nothing but our vocabulary, saved for AutoTokenizer."""
    from llmguard_ops.testing import tiny_tokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[EOS]"]
    tiny_tokenizer(vocabulary=sorted(words), special_tokens=specials, folder=folder)


def _vocabulary(templates: list[str]) -> set[str]:
    terms, _ = load_terms(None, Path("."), None)
    text = " ".join(templates) + " " + " ".join(t for g in terms.values() for ts in g.values() for t in ts)
    return set(re.findall(r"\w+|[^\w\s]", text))


def build_classifier(folder: Path, templates: list[str]) -> None:
    """A tiny BERT sequence classifier (random weights, fixed seed) with a word-level tokenizer."""
    import torch
    import transformers

    _word_tokenizer(folder, _vocabulary(templates))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
        pad_token_id=tokenizer.pad_token_id,
    )
    transformers.BertForSequenceClassification(config).save_pretrained(folder)


def test_tiny_transformers_classifier_end_to_end(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    templates, _ = load_templates(None, tmp_path)
    folder = tmp_path / "classifier"
    build_classifier(folder, templates)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        suite_text(
            "  candidate: {loader: transformers, path: classifier}",
            "{axes: [gender, age], score_label: POSITIVE, n_resamples: 200, worst: 3, report_pairs: 500}",
            "{flip_rate: {max: 1.0, confidence: 0.9}}",
        )
    )
    outcome = llmguard_ops.run(suite, tmp_path / "out")
    result = outcome.report.checks[0]
    assert result.status is Status.PASS, result.error
    d = result.details
    assert d["mode"] == "classifier" and d["score_label"] == "POSITIVE"
    pairs = d["pairs"]
    assert len(pairs) == d["n_pairs"] == d["pairs_listed"] == len(templates) * (8 + 4)
    flips = np.array([p["flip"] for p in pairs], dtype=float)
    gaps = np.array([p["score_gap"] for p in pairs])
    assert result.metrics["flip_rate"].value == pytest.approx(flips.mean())
    assert result.metrics["mean_score_gap"].value == pytest.approx(gaps.mean())
    assert result.metrics["mean_score_gap"].value > 0  # the terms have different embeddings
    assert result.metrics["flip_rate"].confidence == 0.9
    assert len(d["worst_pairs"]) == 3 and d["worst_pairs"][0]["score_gap"] == pytest.approx(gaps.max())
    # the reported scores are the model's own, recomputed here with transformers directly
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    worst = d["worst_pairs"][0]
    with torch.inference_mode():
        enc = tokenizer(worst["inputs"], return_tensors="pt", padding=True)
        p = torch.softmax(model(**enc).logits, dim=-1)[:, 1].numpy()
    assert worst["scores"] == pytest.approx(p.tolist(), abs=1e-5)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["checks"][0]["metrics"]["flip_rate"]["value"] == pytest.approx(flips.mean())


def test_tiny_causal_lm_generations_scored_by_a_classifier(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    templates = ["The {person} said that", "I saw the {person} and"]
    vocab = _vocabulary(templates)
    torch.manual_seed(1)
    for name in ("generator", "scorer"):
        _word_tokenizer(tmp_path / name, vocab)
    size = len(transformers.AutoTokenizer.from_pretrained(tmp_path / "generator"))
    transformers.GPT2LMHeadModel(
        transformers.GPT2Config(vocab_size=size, n_positions=64, n_embd=32, n_layer=2, n_head=2)
    ).save_pretrained(tmp_path / "generator")
    transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=2,
            pad_token_id=0,
        )
    ).save_pretrained(tmp_path / "scorer")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        suite_text(
            "  candidate: {loader: transformers, path: generator, options: {max_new_tokens: 4}}\n"
            "  sentiment: {loader: transformers, path: scorer}",
            "{axes: [gender], scorer: sentiment, n_resamples: 100,"
            " templates: ['The {person} said that', 'I saw the {person} and']}",
        )
    )
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, result.error
    d = result.details
    assert d["mode"] == "generation" and d["scored_by"] == "sentiment"
    assert d["n_pairs"] == 2 * 8
    first = d["pairs"][0]
    assert len(first["outputs"]) == 2 and 0.0 <= first["similarity"] <= 1.0
    assert {"flip_rate", "mean_score_gap", "mean_text_similarity"} <= set(result.metrics)


def test_docs_example_runs_on_a_tiny_sentiment_model(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    source = Path(__file__).parent / "data" / "bias" / "counterfactual.yaml"
    (tmp_path / "suite.yaml").write_text(source.read_text())
    templates, _ = load_templates(None, tmp_path)
    build_classifier(tmp_path / "models" / "sentiment", templates)
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert result.status in (Status.PASS, Status.WARN), result.error
    assert {"axis.gender.flip_rate", "axis.religion.flip_rate", "axis.ethnicity.flip_rate"} <= set(result.metrics)
    assert len(result.details["worst_pairs"]) == 5


def test_swapping_terms_in_dataset_texts(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(KEYWORD_MODEL)
    (tmp_path / "prompts.csv").write_text(
        "text\nMy mother is a nurse.\nThe man was rude.\nNothing to see here.\nThe Muslim woman smiled.\n"
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        suite_text(
            "  candidate: {loader: python, path: model.py:KeywordClassifier}\n"
            "datasets:\n  prompts: {path: prompts.csv, text: text}",
            "{dataset: prompts, axes: [gender, religion], n_resamples: 100}",
        )
    )
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, result.error
    m = result.metrics
    # gender: three texts name a gendered term, each swap flips; religion: 15 pairs, none flip
    assert m["axis.gender.flip_rate"].value == 1.0
    assert m["axis.religion.flip_rate"].value == 0.0
    assert m["flip_rate"].value == pytest.approx(3 / 18)
    inputs = {tuple(p["inputs"]) for p in result.details["pairs"] if p["axis"] == "gender"}
    assert ("My mother is a nurse.", "My father is a nurse.") in inputs
    assert ("The woman was rude.", "The man was rude.") in inputs
    assert result.details["templates"]["texts_with_a_term"] == "3"

"""drift.embedding: MMD and domain classifier on vectors, real encoders on texts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llmguard_ops
from llmguard_checks.drift import _embedding as emb
from llmguard_ops import testing as kit

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def test_unbiased_mmd_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, 1, size=(9, 3))
    kernel, sigma2 = emb.rbf_kernel(np.vstack([x, y]))

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-np.sum((a - b) ** 2) / (2 * sigma2)))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    in_x = np.zeros((1, m + n))
    in_x[0, :m] = 1
    assert emb.mmd2_unbiased(kernel, in_x)[0] == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    d2 = [np.sum((a - b) ** 2) for i, a in enumerate(np.vstack([x, y])) for b in np.vstack([x, y])[i + 1 :]]
    assert sigma2 == pytest.approx(float(np.median(d2)))


def test_mmd_permutation_test_detects_a_shift_and_holds_its_level() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(150, 8)), rng.normal(size=(150, 8))
    y[:, :2] += 0.6
    stat, p, _ = emb.mmd_test(x, y, 199, np.random.default_rng(2))
    assert stat > 0 and p == pytest.approx(1 / 200)
    rejections = 0
    for seed in range(30):
        r = np.random.default_rng(100 + seed)
        _, p, _ = emb.mmd_test(r.normal(size=(40, 4)), r.normal(size=(40, 4)), 99, r)
        rejections += p < 0.05
        assert 0 < p <= 1
    assert rejections <= 5  # 30 null draws at 5 %: expect 1.5


def test_domain_classifier_auc_is_the_mann_whitney_u() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 5)), rng.normal(size=(200, 5))
    y[:, 0] += 1.0
    auc, p, n0, n1 = emb.classifier_test(x, y, seed=0)
    assert n0 == n1 == 100 and auc > 0.7 and p < 1e-6
    auc0, p0, _, _ = emb.classifier_test(x, rng.normal(size=(200, 5)), seed=0)
    assert 0.35 < auc0 < 0.65 and p0 > 0.01


def write_suite(tmp_path: Path, ref: pd.DataFrame, cur: pd.DataFrame, with_: str, text: bool = False) -> Path:
    role = ", text: text" if text else ""
    return kit.write_suite(
        tmp_path,
        "apiVersion: llmguard/v1\nname: emb\n"
        f"datasets:\n  reference: {{path: ref.csv{role}}}\n  current: {{path: cur.csv{role}}}\n"
        "checks:\n  - id: emb\n    uses: drift.embedding\n"
        f"    with: {with_}\n    gate: {{drifted: {{max: 0}}}}\n",
        frames={"ref.csv": ref, "cur.csv": cur},
    )


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_precomputed_embedding_columns_through_a_suite(tmp_path: Path, shift: float) -> None:
    rng = np.random.default_rng(4)
    cols = [f"emb_{i}" for i in range(12)]
    ref = pd.DataFrame(rng.normal(size=(250, 12)), columns=cols)
    cur = pd.DataFrame(rng.normal(size=(250, 12)), columns=cols)
    cur["emb_0"] += shift
    cur["emb_1"] += shift
    ref["note"] = cur["note"] = "ignored"
    suite = write_suite(tmp_path, ref, cur, "{embedding_columns: 'emb_*', n_permutations: 199}")
    result = llmguard_ops.run(suite, tmp_path / "out", write=False).report.checks[0]
    assert result.error is None, result.error
    m = result.metrics
    assert m["drifted"].value == float(shift > 0)
    assert m["p_value"].value == pytest.approx(
        min(1.0, 2 * min(m["mmd_p_value"].value, m["domain_classifier_p_value"].value))
    )
    assert result.details["dimension"] == 12 and result.status.value == ("fail" if shift else "pass")


TOPICS = {
    "cooking": [
        "Stir the {} into the simmering sauce",
        "Bake the {} for twenty minutes",
        "Season the {} with salt and pepper",
        "Chop the {} finely before frying",
    ],
    "finance": [
        "The {} fund beat its benchmark this quarter",
        "Interest on the {} loan rose again",
        "Investors sold {} shares after the report",
        "The bank raised fees on {} accounts",
    ],
}
WORDS = [
    "onion",
    "garlic",
    "carrot",
    "tomato",
    "pepper",
    "ginger",
    "lentil",
    "potato",
    "mushroom",
    "leek",
]


def texts(topics: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pattern = TOPICS[topics[i % len(topics)]][rng.integers(4)]
        out.append(pattern.format(WORDS[rng.integers(len(WORDS))]))
    return out


@pytest.mark.slow
def test_texts_with_the_packaged_minilm_encoder(tmp_path: Path) -> None:
    ref = pd.DataFrame({"text": texts(["cooking"], 40, 0)})
    cur = pd.DataFrame({"text": texts(["cooking", "finance"], 40, 1)})
    suite = write_suite(tmp_path, ref, cur, "{n_permutations: 199, device: cpu, batch_size: 20}", text=True)
    result = llmguard_ops.run(suite, tmp_path / "out", write=False).report.checks[0]
    assert result.error is None, result.error
    assert result.metrics["drifted"].value == 1.0
    assert result.details["dimension"] == 384 and result.details["device"] == "cpu"
    assert result.details["encoder"].endswith("model")


def tiny_encoder(folder: Path) -> Path:
    """A 2-layer BERT with a locally trained WordPiece tokenizer, saved as a plain folder."""
    from transformers import BertConfig, BertModel

    from llmguard_ops.testing import tiny_tokenizer

    fast = tiny_tokenizer(
        texts(["cooking", "finance"], 200, 9),
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        pre_tokenizer="bert",
        wordpiece_size=200,
        folder=folder,
    )
    import torch

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def test_plain_transformers_folder_is_mean_pooled_in_batches(tmp_path: Path) -> None:
    folder = tiny_encoder(tmp_path / "tiny")
    sample = texts(["cooking", "finance"], 10, 2)
    one = emb.encode(sample, folder, device="cpu", batch_size=3, max_length=32)
    all_at_once = emb.encode(sample, folder, device="cpu", batch_size=10, max_length=32)
    assert one.shape == (10, 32)
    np.testing.assert_allclose(one, all_at_once, rtol=1e-4, atol=1e-5)
    ref = pd.DataFrame({"body": texts(["cooking"], 80, 3)})
    cur = pd.DataFrame({"body": texts(["finance"], 80, 4)})
    suite = write_suite(tmp_path, ref, cur, "{text_column: body, encoder: tiny, n_permutations: 99}")
    result = llmguard_ops.run(suite, tmp_path / "out", write=False).report.checks[0]
    assert result.error is None, result.error
    assert result.metrics["drifted"].value == 1.0 and result.details["dimension"] == 32


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_encoder_on_cuda_matches_cpu() -> None:
    sample = texts(["cooking", "finance"], 16, 5)
    folder = emb.default_encoder()
    cpu = emb.encode(sample, folder, device="cpu", batch_size=8, max_length=64)
    gpu = emb.encode(sample, folder, device="cuda", batch_size=8, max_length=64)
    np.testing.assert_allclose(cpu, gpu, atol=1e-3)


def test_bad_sources_are_clear_errors(tmp_path: Path) -> None:
    ref = pd.DataFrame({"a": [1.0] * 20})
    suite = write_suite(tmp_path, ref, ref, "{}")
    result = llmguard_ops.run(suite, tmp_path / "out", write=False).report.checks[0]
    assert result.status.value == "error" and result.error is not None
    assert "names no 'text' column" in result.error.message
    with pytest.raises(llmguard_ops.SuiteError, match="not both"):
        llmguard_ops.run(
            write_suite(tmp_path, ref, ref, "{text_column: a, embedding_columns: [a]}"),
            tmp_path / "out",
            write=False,
        )


def test_one_column_of_json_arrays_is_read_as_vectors() -> None:
    frame = pd.DataFrame({"vec": ["[1, 2, 3]", "[4, 5, 6]", None], "other": [1, 2, 3]})
    vectors = emb._vectors(frame, ["vec"])
    assert vectors.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    numeric = pd.DataFrame({"e0": [1.0, np.nan, 3.0], "e1": [1.0, 2.0, 3.0]})
    assert emb._vectors(numeric, ["e0", "e1"]).tolist() == [[1.0, 1.0], [3.0, 3.0]]

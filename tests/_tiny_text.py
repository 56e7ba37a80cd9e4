"""A tiny transformers sequence classifier built from a config, saved locally (no hub)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SENTENCES = [
    "the service was great and the staff were friendly",
    "terrible delay and rude support, I want a refund",
    "hello, my card was declined at the shop",
    "thanks, the loan was approved quickly",
    "the app crashed again and I lost my payment",
    "good rates and a simple application",
]


def build_classifier(folder: Path, seed: int = 0) -> Path:
    """Train a word-level tokenizer on a few sentences and save a 2-layer BERT classifier."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from llmguard_ops.testing import tiny_tokenizer

    fast = tiny_tokenizer(
        SENTENCES,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        lowercase=True,
        template="[CLS] $A [SEP]",
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    model = BertForSequenceClassification(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder

"""Harness overhead per generation: llmguard_ops.generation.generate against the model itself.

    python benchmarks/generation.py [--rounds 5] [--prompts 40] [--new-tokens 16]

Both sides drive the *same* tiny local causal LM (a 2-layer GPT-2 built from a config,
word-level tokenizer, greedy, 16 new tokens, one thread): directly, ``model.complete([prompt])``
per prompt; through the harness, :func:`llmguard_ops.generation.generate` on a dataset of
the same prompts with a prompt template, a fresh on-disk cache each round (so every answer
is generated, rendered, keyed, written and counted). Rounds alternate so machine drift hits
both. Target: harness overhead under 2 % of the per-generation time. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def build(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(200)] + ["question", "answer", ":", "?"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=["[UNK]", "[EOS]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]", pad_token="[EOS]")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=max(fast.get_vocab().values()) + 1,
        n_layer=2,
        n_head=2,
        n_embd=64,
        n_positions=128,
        eos_token_id=10_000,
        bos_token_id=1,
    )  # no EOS: always 16 tokens
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=40)
    ap.add_argument("--new-tokens", type=int, default=16)
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    from llmguard_ops.adapters import load_transformers
    from llmguard_ops.artifacts import LoadedDataset, LoadedModel
    from llmguard_ops.generation import GenerationStore, flatten, generate, render
    from llmguard_ops.suite import DatasetSpec, GenerationConfig, ModelSpec, PromptSpec

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="llmguard-genbench-"))
    folder = build(tmp / "lm")
    lm = load_transformers(folder, {})
    frame = pd.DataFrame({"q": [" ".join(f"w{(i * 7 + j) % 200}" for j in range(12)) for i in range(args.prompts)]})
    spec = DatasetSpec(path="x.csv", text="q")
    dataset = LoadedDataset(name="d", spec=spec, path=tmp / "x.csv", frame=frame, sha256="0" * 64)
    mspec = ModelSpec(loader="transformers", path=str(folder))
    model = LoadedModel(name="m", spec=mspec, obj=lm, sha256="1" * 64, digest_kind="x", loader="transformers")
    prompt = PromptSpec(template="question : {q} ? answer :")
    config = GenerationConfig(max_new_tokens=args.new_tokens)
    prompts = [flatten(render(prompt, row, text_column="q")) for row in frame.to_dict(orient="records")]

    def direct() -> float:
        t = time.perf_counter()
        for p in prompts:
            lm.complete([p], max_new_tokens=args.new_tokens)
        return (time.perf_counter() - t) / len(prompts)

    def harness(r: int) -> float:
        store = GenerationStore(tmp / f"cache-{r}")
        t = time.perf_counter()
        generate(model, dataset, prompt=prompt, config=config, store=store, run_seed=0)
        return (time.perf_counter() - t) / len(prompts)

    direct()  # warm-up
    d_times, h_times = [], []
    for r in range(args.rounds):
        if r % 2:
            h_times.append(harness(r))
            d_times.append(direct())
        else:
            d_times.append(direct())
            h_times.append(harness(r))

    class Instant:
        """A model that answers at once: what generate() costs by itself."""

        input_kind = "text"

        def chat(self, conversations: list, **settings: object) -> list[str]:
            return ["city" for _ in conversations]

    null = LoadedModel(
        name="null",
        spec=ModelSpec(loader="python", path="x.py:Instant"),
        obj=Instant(),
        sha256="2" * 64,
        digest_kind="x",
        loader="python",
    )
    own = []
    for r in range(args.rounds):
        store = GenerationStore(tmp / f"null-{r}")
        t = time.perf_counter()
        generate(null, dataset, prompt=prompt, config=config, store=store, run_seed=0)
        own.append((time.perf_counter() - t) / len(prompts))
    d, h = statistics.median(d_times), statistics.median(h_times)
    overhead = h / d - 1
    print("| measure | direct `model.complete` | harness `generate()` | overhead | target |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| ms per generation ({args.new_tokens} tokens, median of {args.rounds} rounds × {args.prompts}) "
        f"| {d * 1e3:.2f} | {h * 1e3:.2f} | {overhead * 100:+.2f} % | < 2 % |"
    )
    cost = statistics.median(own)
    print(
        f"| harness's own cost per generation (instant model: render, key, cache write, count) "
        f"| – | {cost * 1e6:.1f} µs | {cost / d * 100:.2f} % of a direct generation | < 2 % |"
    )
    print(f"\nrounds direct: {[round(x * 1e3, 2) for x in d_times]}; harness: {[round(x * 1e3, 2) for x in h_times]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

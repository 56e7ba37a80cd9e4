"""Train the LLM release suite's two small causal LMs, deterministically, on the CPU.

Both are 2-layer GPT-2 models with a word-level tokenizer trained here on the QA set's
corpus (``data/facts.jsonl`` rendered through ``make_data.py``'s phrasings), saved with
``save_pretrained`` (weights and tokenizer, with a chat template, so the harness renders
prompts the way a chat model expects):

* ``models/champion``: the model in production, trained on every fact;
* ``models/candidate``: the challenger, trained on the same data except that 12 % of the
  facts carry a wrong answer (another country's value), so it is about 12 points of exact
  match and token F1 worse: the release suite blocks it.

Each model answers under either system prompt of ``release.yaml`` (both are in its
training data). A folder whose ``training.json`` matches the data and settings is kept,
so a second run trains nothing.

    python suites/llm/train_models.py
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from make_data import JSON_PHRASING, PHRASINGS, json_answer  # noqa: E402

SYSTEM_PROMPTS = [
    "Answer briefly .",
    "You are an atlas . Reply exactly .",
]
SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SETTINGS: dict[str, Any] = {
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 2,
    "n_positions": 64,
    "lr": 5e-3,
    "steps": 1200,
    "batch": 32,
    "seed": 0,
    "threads": 1,
}
CORRUPT_FRACTION = 0.12


def load_facts(path: Path = HERE / "data" / "facts.jsonl") -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corrupt(facts: list[dict[str, str]], fraction: float, seed: int = 1) -> list[dict[str, str]]:
    """A copy of ``facts`` where ``fraction`` of the (country, attribute) answers are another country's."""
    rng = random.Random(seed)
    out = [dict(f) for f in facts]
    keys = [(i, a) for i in range(len(facts)) for a in PHRASINGS]
    for i, attr in rng.sample(keys, round(fraction * len(keys))):
        j = (i + 1 + rng.randrange(len(facts) - 1)) % len(facts)
        out[i][attr] = facts[j][attr]
    return out


def examples(facts: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(question, answer) pairs: every phrasing of every fact, and the JSON question."""
    pairs = [(p.format(country=f["country"]), f[attr]) for f in facts for attr, ps in PHRASINGS.items() for p in ps]
    pairs += [(JSON_PHRASING.format(country=f["country"]), json_answer(f)) for f in facts]
    return pairs


def _tokenizer(texts: list[str]) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL, min_frequency=1))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[4:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _digest(facts: list[dict[str, str]], settings: dict[str, Any]) -> str:
    blob = json.dumps(
        {"facts": facts, "settings": settings, "system": SYSTEM_PROMPTS, "template": CHAT_TEMPLATE}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def train(
    folder: Path, facts: list[dict[str, str]], vocab_facts: list[dict[str, str]] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Train one model on ``facts`` into ``folder`` (kept when its ``training.json`` matches)."""
    settings = {**SETTINGS, **overrides}
    vocab_facts = vocab_facts or facts
    digest = _digest(facts, {**settings, "vocab": _digest(vocab_facts, {})})
    stamp = folder / "training.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == digest:
        return {**json.loads(stamp.read_text()), "skipped": True}
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    started = time.perf_counter()
    torch.manual_seed(settings["seed"])
    torch.set_num_threads(settings["threads"])
    pairs = examples(facts)
    corpus = [f"{q} {a}" for q, a in examples(vocab_facts)] + SYSTEM_PROMPTS
    tok = _tokenizer(corpus)
    rows, prompt_lens = [], []
    pick = random.Random(settings["seed"])
    for q, a in pairs:
        for system in [pick.choice(SYSTEM_PROMPTS)]:  # each pair under one of the two prompts
            prompt = tok.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": q}],
                tokenize=False,
                add_generation_prompt=True,
            )
            p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            a_ids = tok(" " + a, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            rows.append(p_ids + a_ids)
            prompt_lens.append(len(p_ids))
    width = max(len(r) for r in rows)
    if width > settings["n_positions"]:
        raise ValueError(f"a training sequence of {width} tokens exceeds n_positions {settings['n_positions']}")
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, p) in enumerate(zip(rows, prompt_lens, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, p : len(r)] = torch.tensor(r[p:])  # loss only on the answer and its end token
        mask[i, : len(r)] = 1
    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=settings["n_embd"],
        n_layer=settings["n_layer"],
        n_head=settings["n_head"],
        n_positions=settings["n_positions"],
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    opt = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=0.0)
    gen = torch.Generator().manual_seed(settings["seed"])
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(settings["steps"]):
        batch = torch.randperm(len(rows), generator=gen)[: settings["batch"]]
        w = int(mask[batch].sum(1).max())  # no step pays for padding past its longest row
        loss = model(input_ids=ids[batch][:, :w], attention_mask=mask[batch][:, :w], labels=labels[batch][:, :w]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = {
        "digest": digest,
        "final_loss": round(float(loss.detach()), 4),
        "sequences": len(rows),
        "settings": settings,
    }
    stamp.write_text(json.dumps(info, indent=2) + "\n")  # no timings: the folder's digest is reproducible
    return {**info, "seconds": round(time.perf_counter() - started, 1)}


def build(out: Path = HERE / "models", fraction: float = CORRUPT_FRACTION, **overrides: Any) -> dict[str, Any]:
    """Train ``out/champion`` (every fact right) and ``out/candidate`` (``fraction`` of them wrong)."""
    facts = load_facts()
    return {
        "champion": train(out / "champion", facts, **overrides),
        "candidate": train(out / "candidate", corrupt(facts, fraction), vocab_facts=facts, **overrides),
    }


def main() -> None:
    for name, info in build().items():
        what = "up to date" if info.get("skipped") else f"trained in {info['seconds']} s"
        print(f"{HERE / 'models' / name}: {what} (final loss {info['final_loss']})")


if __name__ == "__main__":
    main()

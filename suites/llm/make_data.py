"""Generate the LLM release suite's QA set (run once; the JSONL files are committed).

Synthetic facts about fictional countries, so no model knows them beforehand and the two
models of ``train_models.py`` learn them from this data alone: each country has a capital,
a currency and a language. ``data/facts.jsonl`` holds one row per country;
``data/release_qa.jsonl`` holds 300 questions over those 180 facts in three phrasings (120
facts are asked twice, in two phrasings), with the reference ``answer``;
``data/release_json.jsonl`` holds 60 questions that ask for a JSON answer
(``{"capital": ..., "currency": ...}``) for the format-validity gate.

    python suites/llm/make_data.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
N_COUNTRIES = 60
SEED = 7

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "th", "sh"]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ia", "ou"]
CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "x"]

PHRASINGS = {
    "capital": [
        "What is the capital of {country} ?",
        "Name the capital city of {country} .",
        "Which city is the capital of {country} ?",
    ],
    "currency": [
        "What is the currency of {country} ?",
        "Which currency is used in {country} ?",
        "Name the money of {country} .",
    ],
    "language": [
        "What language is spoken in {country} ?",
        "Which language do people in {country} speak ?",
        "Name the main language of {country} .",
    ],
}
JSON_PHRASING = "Give the capital and currency of {country} as JSON ."


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables))


def facts(n: int = N_COUNTRIES, seed: int = SEED) -> list[dict[str, str]]:
    """``n`` fictional countries with a unique name, capital, currency and language each."""
    rng = random.Random(seed)
    used: set[str] = set()

    def fresh(syllables: int, suffix: str = "") -> str:
        while True:
            w = (_word(rng, syllables) + suffix).capitalize()
            if w not in used:
                used.add(w)
                return w

    return [
        {"country": fresh(2, "ia"), "capital": fresh(2), "currency": fresh(1, "o").lower(), "language": fresh(2, "ese")}
        for _ in range(n)
    ]


def json_answer(fact: dict[str, str]) -> str:
    return json.dumps({"capital": fact["capital"], "currency": fact["currency"]})


def questions(rows: list[dict[str, str]], n: int = 300) -> list[dict[str, str]]:
    """``n`` questions cycling over countries, attributes and phrasings (deterministic)."""
    out = []
    keys = [(fact, attr) for fact in rows for attr in PHRASINGS]
    for i in range(n):
        fact, attr = keys[i % len(keys)]
        phrasing = PHRASINGS[attr][(i // len(keys) + i) % len(PHRASINGS[attr])]
        out.append(
            {
                "id": f"q{i:03d}",
                "country": fact["country"],
                "attribute": attr,
                "question": phrasing.format(country=fact["country"]),
                "answer": fact[attr],
            }
        )
    return out


def json_questions(rows: list[dict[str, str]], n: int = 60) -> list[dict[str, str]]:
    return [
        {
            "id": f"j{i:03d}",
            "country": f["country"],
            "attribute": "json",
            "question": JSON_PHRASING.format(country=f["country"]),
            "answer": json_answer(f),
        }
        for i, f in enumerate(rows[:n])
    ]


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rows = facts()
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    _write(data / "facts.jsonl", rows)
    _write(data / "release_qa.jsonl", questions(rows))
    _write(data / "release_json.jsonl", json_questions(rows))
    print(f"wrote {len(rows)} facts, 300 questions and 60 JSON questions into {data}")


if __name__ == "__main__":
    main()

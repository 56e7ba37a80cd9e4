"""Generating text for dataset rows with a model's prompt and generation settings.

The one entry point is :meth:`llmguard_ops.CheckContext.generate` (which calls
:func:`generate` here): *these rows of this dataset, sent to this model with its prompt
template and its generation config, ``samples`` times each*. Every check that needs text
from a model goes through it, so prompts are rendered the same way everywhere,
generations are cached once per run (and on disk, so an interrupted run resumes), and
token counts are recorded.

How a row becomes what the model receives:

1. :func:`render` builds an OpenAI-shaped conversation: the system prompt, the few-shot
   turns, then either the row's ``messages`` (multi-turn datasets) or one user turn from
   the template (``{column}`` placeholders; ``{text}`` is the dataset's text column; the
   RAG context goes in ``{context}`` or a ``Context:`` block).
2. The model gets it in its own shape: ``chat(conversations, **settings)`` when it has one
   (python models, ``http`` endpoints with ``api: chat``); a transformers causal LM renders
   it with its tokenizer's chat template (``render_chat``), falling back to
   :func:`flatten`; anything else gets ``generate(flatten(conversation), **settings)``.
   A single user turn with no system prompt flattens to its own text, so a suite without
   prompts sends exactly the text column, as before.
3. Settings passed: ``temperature``, ``top_p``, ``max_new_tokens``, ``stop``, ``seed``
   (only the keywords the model's method accepts). A model may answer a string or a
   mapping ``{"text", "prompt_tokens", "output_tokens", "truncated"}``.

Repeated samples are independent: sample ``i`` of a prompt is drawn with its own seed
(derived from the generation seed and ``i``) and cached under its own key, so a cache can
never serve sample ``i + 1`` from sample ``i``. The cache key is the sha256 of (model
digest, loader options, rendered conversation, generation config without ``samples``,
seed, sample index).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArtifactError

if TYPE_CHECKING:
    from .artifacts import LoadedDataset, LoadedModel
    from .suite import GenerationConfig, PromptSpec

Message = dict[str, str]
Conversation = list[Message]
Bulk = Callable[[list[tuple[Conversation, dict[str, Any]]]], list[dict[str, Any]]]
"""An inference backend's entry: answers for ``(conversation, settings)`` pairs, in order."""

CACHE_ENV = "LLMGUARD_CACHE"
"""Environment variable naming a generation cache folder shared across runs (``--cache``)."""

_SETTINGS = ("temperature", "top_p", "max_new_tokens", "stop", "seed")


def default_config() -> GenerationConfig:
    from .suite import GenerationConfig

    return GenerationConfig()


def with_settings(config: GenerationConfig | None, settings: dict[str, Any] | None) -> GenerationConfig | None:
    """``config`` with some settings replaced (validated as the suite's ``generation:``)."""
    if not settings:
        return config
    from pydantic import ValidationError

    from .suite import GenerationConfig

    base = config.model_dump(exclude_unset=True) if config is not None else {}
    try:
        return GenerationConfig.model_validate({**base, **settings})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "?"
        raise ValueError(f"generation.{where}: {err.get('msg', 'invalid')}") from None


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def render(prompt: PromptSpec | None, row: dict[str, Any], *, text_column: str | None) -> Conversation:
    """The conversation sent for one dataset row (see the module docstring)."""
    messages: Conversation = []
    if prompt is not None and prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    if prompt is not None:
        for shot in prompt.few_shot:
            messages += [{"role": "user", "content": shot.user}, {"role": "assistant", "content": shot.assistant}]
    turns_column = prompt.messages_column if prompt is not None and prompt.messages_column else "messages"
    raw: Any = row.get(turns_column)
    if hasattr(raw, "tolist"):  # a numpy array of turns, as pandas reads JSONL lists
        raw = raw.tolist()
    if isinstance(raw, list | tuple):
        turns = list(raw)
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
                raise ArtifactError(f"column '{turns_column}': turn {i} is not a {{role, content}} mapping")
            if turn["role"] == "system" and messages and messages[0]["role"] == "system":
                continue  # the suite's system prompt is the release's: it wins
            messages.append({"role": str(turn["role"]), "content": _cell(turn["content"])})
        return messages
    values = {str(k): _cell(v) for k, v in row.items()}
    if text_column is not None:
        values.setdefault("text", values.get(text_column, ""))
    template = prompt.template if prompt is not None else "{text}"
    try:
        user = template.format_map(values)
    except KeyError as exc:
        raise ArtifactError(f"prompt template needs column {exc.args[0]!r}, which the dataset lacks") from None
    if prompt is not None and prompt.context_column:
        context = values.get(prompt.context_column)
        if context is None:
            raise ArtifactError(f"prompt context_column '{prompt.context_column}' is not in the dataset")
        if "{context}" not in template:
            user = f"Context: {context}\n\n{user}"
    messages.append({"role": "user", "content": user})
    return messages


def flatten(messages: Conversation) -> str:
    """A conversation as plain text for a model without a chat interface.

    One user turn alone is its own text. Otherwise the system prompt, a blank line, then
    ``user: ...`` / ``assistant: ...`` lines, ending with ``assistant:`` for the model to
    continue.
    """
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    parts: list[str] = []
    for m in messages:
        if m["role"] == "system":
            parts.append(m["content"] + "\n\n")
        else:
            parts.append(f"{m['role']}: {m['content']}\n")
    return "".join(parts) + "assistant:"


@dataclass
class Generations:
    """Texts a model generated for the rows of a dataset, ``samples`` per row.

    ``texts[i][j]`` is sample ``j`` of row ``i``; token counts have the same shape.
    """

    model: str
    dataset: str
    conversations: list[Conversation]
    texts: list[list[str]]
    prompt_tokens: list[list[int]]
    output_tokens: list[list[int]]
    config: dict[str, Any]
    prompt: dict[str, Any] | None
    token_unit: str = "tokens"
    truncated: int = 0
    cache_hits: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return len(self.texts[0]) if self.texts else 0

    def first(self) -> list[str]:
        """Sample 0 of every row."""
        return [t[0] for t in self.texts]

    def describe(self) -> dict[str, Any]:
        """Facts for a check's details: prompt, settings, truncation, cache use."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "rows": len(self.texts),
            "samples": self.samples,
            "prompt": self.prompt,
            "generation": self.config,
            "truncated_prompts": self.truncated,
            "cache_hits": self.cache_hits,
            "token_unit": self.token_unit,
        }


class GenerationStore:
    """Generations of a run, in memory and appended to ``<folder>/generations.jsonl``.

    Opening a folder that already holds the file loads it: a rerun (or a run resumed after
    an interruption) pays only for what is missing.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._values: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.file: Path | None = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.file = folder / "generations.jsonl"
            if self.file.is_file():
                for line in self.file.read_text(encoding="utf-8").splitlines():
                    try:
                        rec = json.loads(line)
                        self._values[str(rec["key"])] = dict(rec["value"])
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by an interruption

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._values.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._values[key] = value
            if self.file is not None:
                with open(self.file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")


def store_folder(run_out_dir: Path) -> Path:
    """The cache folder: ``$LLMGUARD_CACHE`` when set (``--cache``), else ``<out>/cache``."""
    shared = os.environ.get(CACHE_ENV)
    return Path(shared) if shared else run_out_dir / "cache"


def sample_seed(base: int, index: int) -> int:
    digest = hashlib.sha256(f"{base}:sample:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def cache_key(model: LoadedModel, conversation: Conversation, config: dict[str, Any], seed: int, index: int) -> str:
    payload = {
        "model": model.sha256,
        "loader": model.loader,
        "path": model.spec.path,
        "options": model.spec.options,
        "conversation": conversation,
        "config": {k: v for k, v in config.items() if k != "samples"},
        "seed": seed,
        "sample": index,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _accepted(fn: Any, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return settings
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return settings
    return {k: v for k, v in settings.items() if k in params}


def _cut(text: str, stop: list[str]) -> str:
    ends = [i for s in stop if s and (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text


def call_model(obj: Any, conversations: list[Conversation], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One call of the model for these conversations; answers as ``{text, ...}`` records."""
    if callable(getattr(obj, "render_chat", None)):
        items: list[Any] = [obj.render_chat(c) for c in conversations]
        fn = getattr(obj, "complete", None) or obj.generate
    elif callable(getattr(obj, "chat", None)):
        items, fn = conversations, obj.chat
    elif callable(getattr(obj, "generate", None)):
        items, fn = [flatten(c) for c in conversations], obj.generate
    else:
        raise ArtifactError(f"{type(obj).__name__} has neither generate(prompts) nor chat(conversations)")
    answers = list(fn(items, **_accepted(fn, settings)))
    if len(answers) != len(items):
        raise ArtifactError(f"{type(obj).__name__} answered {len(answers)} of {len(items)} prompts")
    out = []
    for a in answers:
        out.append(dict(a) if isinstance(a, dict) else {"text": "" if a is None else str(a)})
    return out


def _count(obj: Any, text: str) -> tuple[int, str]:
    counter = getattr(obj, "count_tokens", None)
    if callable(counter):
        return int(counter(text)), "tokens"
    return len(text.split()), "words"


def _record(obj: Any, ans: dict[str, Any], conversation: Conversation, stop: list[str]) -> dict[str, Any]:
    """What the store keeps of one answer: the text cut at ``stop``, its token counts."""
    text = _cut(str(ans.get("text", "")), stop)
    rec: dict[str, Any] = {"text": text, "truncated": bool(ans.get("truncated", False))}
    if ans.get("output_tokens") is not None and text == ans.get("text"):
        rec["output_tokens"] = int(ans["output_tokens"])
    else:
        rec["output_tokens"], rec["unit"] = _count(obj, text)
    if ans.get("prompt_tokens") is not None:
        rec["prompt_tokens"] = int(ans["prompt_tokens"])
    else:
        rec["prompt_tokens"], rec["unit"] = _count(obj, flatten(conversation))
    return rec


def generate(
    model: LoadedModel,
    dataset: LoadedDataset,
    *,
    prompt: PromptSpec | None,
    config: GenerationConfig | None,
    store: GenerationStore,
    run_seed: int,
    samples: int | None = None,
    rows: list[int] | None = None,
    on_call: Any = None,
    bulk: Bulk | None = None,
) -> Generations:
    """Generate for ``rows`` of ``dataset`` (all by default), ``samples`` per row."""
    records = dataset.frame.to_dict(orient="records")
    index = list(range(len(records))) if rows is None else list(rows)
    convs = [render(prompt, records[i], text_column=dataset.spec.text) for i in index]
    out = generate_conversations(
        model, convs, config=config, store=store, run_seed=run_seed, samples=samples, on_call=on_call, bulk=bulk
    )
    out.dataset = dataset.name
    out.prompt = prompt.model_dump(exclude_none=True) if prompt is not None else None
    return out


def generate_conversations(
    model: LoadedModel,
    convs: list[Conversation],
    *,
    config: GenerationConfig | None,
    store: GenerationStore,
    run_seed: int,
    samples: int | None = None,
    on_call: Any = None,
    bulk: Bulk | None = None,
) -> Generations:
    """Generate for ready conversations (a judge's prompts, attacks), ``samples`` each.

    ``bulk`` (an inference backend's entry, see :attr:`PredictionCache.backend
    <llmguard_ops.context.PredictionCache>`) answers every missing ``(conversation,
    settings)`` of every sample in one call instead of one :func:`call_model` per sample;
    seeds, cache keys, the store's records and their order, and the token counts are
    the same either way.
    """
    cfg = config or default_config()
    k = samples if samples is not None else cfg.samples
    index = list(range(len(convs)))
    settings_base = {
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_new_tokens": cfg.max_new_tokens,
        "stop": list(cfg.stop),
    }
    if cfg.truncate == "error":
        settings_base["truncate"] = "error"
    cfg_dict = cfg.model_dump()
    base_seed = cfg.seed if cfg.seed is not None else run_seed
    obj = model.obj
    texts = [[""] * k for _ in index]
    ptok = [[0] * k for _ in index]
    otok = [[0] * k for _ in index]
    truncated = hits = 0
    unit = "tokens"
    plans: list[tuple[list[str], list[int], dict[str, Any]]] = []  # per sample: keys, missing rows, settings
    for j in range(k):
        seed = sample_seed(base_seed, j)
        keys = [cache_key(model, c, cfg_dict, seed, j) for c in convs]
        missing = [i for i, key in enumerate(keys) if store.get(key) is None]
        hits += len(keys) - len(missing)
        settings = {**settings_base, "seed": seed}
        if "truncate" in settings and not callable(getattr(obj, "render_chat", None)):
            settings.pop("truncate")
        plans.append((keys, missing, settings))
    answered: dict[int, list[dict[str, Any]]] = {}
    if bulk is not None:  # every sample's missing prompts at once, answers in the order asked
        asked = [(convs[i], settings) for _, missing, settings in plans for i in missing]
        flat = list(bulk(asked)) if asked else []
        if len(flat) != len(asked):
            raise ArtifactError(f"the inference backend answered {len(flat)} of {len(asked)} prompts")
        start = 0
        for j, (_, missing, _) in enumerate(plans):
            answered[j], start = flat[start : start + len(missing)], start + len(missing)
    for j, (keys, missing, settings) in enumerate(plans):
        if missing:
            answers = answered[j] if bulk is not None else call_model(obj, [convs[i] for i in missing], settings)
            if on_call is not None:
                on_call(len(missing))
            for i, ans in zip(missing, answers, strict=True):
                store.put(keys[i], _record(obj, ans, convs[i], cfg.stop))
        for i, key in enumerate(keys):
            rec = store.get(key) or {}
            texts[i][j] = str(rec.get("text", ""))
            ptok[i][j] = int(rec.get("prompt_tokens", 0))
            otok[i][j] = int(rec.get("output_tokens", 0))
            truncated += int(bool(rec.get("truncated")) and j == 0)
            if rec.get("unit") == "words":
                unit = "words"
    out = Generations(
        model=model.name,
        dataset="",
        conversations=convs,
        texts=texts,
        prompt_tokens=ptok,
        output_tokens=otok,
        config=cfg_dict,
        prompt=None,
        token_unit=unit,
        truncated=truncated,
        cache_hits=hits,
    )
    if truncated:
        out.warnings.append(
            f"{model.name}: {truncated} of {len(index)} prompts were longer than the context "
            "window and lost their beginning (truncate: left)"
        )
    if k > 1 and cfg.temperature == 0:
        out.warnings.append(f"{model.name}: {k} samples at temperature 0 are identical by construction")
    return out


__all__ = [
    "CACHE_ENV",
    "GenerationStore",
    "Generations",
    "call_model",
    "flatten",
    "generate",
    "generate_conversations",
    "render",
    "with_settings",
]

"""deepeval metrics judged by a local model: nothing calls a hosted API.

:class:`LocalJudge` (built by :func:`make_judge`) subclasses deepeval's
``DeepEvalBaseLLM`` around a loaded suite model that has ``.generate(prompts)`` (e.g.
:class:`llmguard_ops.adapters.TransformersModel`). deepeval calls
``generate(prompt, schema=...)``; the judge answers, and the wrapper parses the first
JSON object of the answer into the schema. When that fails it raises
:class:`JudgeOutputError` — it never returns a made-up verdict — and the check counts
the failure. A model that is not instruction-tuned (or too small) fails every time,
and the check then errors with the judge's own output quoted.

deepeval is imported only here, after :func:`offline_env` switched off its telemetry,
its update check and its error reporting.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JUDGE_METRICS = ("answer_relevancy", "faithfulness", "bias", "toxicity", "hallucination")
LOWER_IS_BETTER = frozenset({"bias", "toxicity", "hallucination"})
NEEDS_CONTEXT = frozenset({"faithfulness", "hallucination"})

_OFFLINE = {
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",  # no posthog / sentry / OpenTelemetry export
    "DEEPEVAL_UPDATE_WARNING_OPT_IN": "NO",  # no PyPI version check on import
    "ERROR_REPORTING": "NO",  # no sentry error reports
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def offline_env() -> None:
    """Set the switches that keep deepeval (and the hub) offline; call before importing it."""
    for key, value in _OFFLINE.items():
        os.environ[key] = value


def import_deepeval() -> None:
    """Import deepeval offline, without letting it take over SIGINT/SIGTERM.

    deepeval's tracing module installs signal handlers at import time; that raises
    outside the main thread (checks run in worker threads) and would replace the
    harness's own Ctrl-C handling. During the import ``signal.signal`` is a no-op.
    """
    offline_env()
    if "deepeval.metrics" in sys.modules:
        return
    with _IMPORT_LOCK:
        original = signal.signal
        signal.signal = lambda signum, handler: signal.getsignal(signum)  # type: ignore[assignment]
        try:
            import deepeval.metrics
            import deepeval.models
            import deepeval.test_case  # noqa: F401
        finally:
            signal.signal = original


_IMPORT_LOCK = threading.Lock()


class JudgeOutputError(ValueError):
    """The judge's answer could not be read as the JSON the metric asked for."""


_JSON = re.compile(r"\{.*\}", re.DOTALL)


def parse_verdict(text: str, schema: Any) -> Any:
    """The first JSON object in ``text`` validated as ``schema`` (a pydantic model)."""
    match = _JSON.search(text or "")
    if match is None:
        raise JudgeOutputError(f"no JSON object in the judge's answer for {schema.__name__}: {text[:120]!r}")
    raw = re.sub(r",\s*([\]}])", r"\1", match.group(0))  # trailing commas are common
    try:
        return schema.model_validate(json.loads(raw))
    except Exception as exc:  # json.JSONDecodeError or pydantic.ValidationError
        first = str(exc).splitlines()[0]
        raise JudgeOutputError(
            f"judge's answer is not a valid {schema.__name__}: {first}; answer was {text[:120]!r}"
        ) from None


@dataclass
class JudgeStats:
    """What the judge was asked and how often its answer could not be parsed."""

    calls: int = 0
    failures: int = 0
    examples: list[str] = field(default_factory=list)


def make_judge(llm: Any, name: str, *, max_new_tokens: int, temperature: float, seed: int) -> Any:
    """A ``DeepEvalBaseLLM`` around ``llm`` (an object with ``.generate(prompts)``)."""
    import_deepeval()
    from deepeval.models import DeepEvalBaseLLM

    class LocalJudge(DeepEvalBaseLLM):
        """deepeval's custom-model interface over a local generator."""

        def __init__(self) -> None:
            self.llm = llm
            self.stats = JudgeStats()
            self.draw = 0
            super().__init__(name)

        def load_model(self) -> Any:
            return self.llm

        def _prompt(self, prompt: str) -> str:
            tok = getattr(self.llm, "tokenizer", None)
            if tok is not None and getattr(tok, "chat_template", None):
                # instruction-tuned judges answer far better in their own chat format
                return str(
                    tok.apply_chat_template(
                        [{"role": "user", "content": prompt}],
                        tokenize=False,
                        add_generation_prompt=True,
                    )
                )
            return prompt

        def _complete(self, prompt: str) -> str:
            self.stats.calls += 1
            text = self._prompt(prompt)
            if temperature > 0 and hasattr(self.llm, "model") and hasattr(self.llm, "tokenizer"):
                return sample(self.llm, text, max_new_tokens, temperature, seed + self.draw)
            return str(self.llm.generate([text], max_new_tokens=max_new_tokens)[0])

        def generate(self, prompt: str, schema: Any = None) -> Any:
            answer = self._complete(prompt)
            if schema is None:
                return answer
            try:
                return parse_verdict(answer, schema)
            except JudgeOutputError as exc:
                self.stats.failures += 1
                if len(self.stats.examples) < 3:
                    self.stats.examples.append(str(exc))
                raise

        async def a_generate(self, prompt: str, schema: Any = None) -> Any:
            return self.generate(prompt, schema)

        def get_model_name(self) -> str:
            return f"local:{name}"

    return LocalJudge()


def sample(llm: Any, prompt: str, max_new_tokens: int, temperature: float, seed: int) -> str:
    """One sampled completion of a transformers judge (the repeats need fresh draws)."""
    import torch

    torch.manual_seed(seed)
    tok = llm.tokenizer
    enc = tok(prompt, return_tensors="pt").to(llm.device)
    with torch.inference_mode():
        ids = llm.model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=temperature,
            pad_token_id=tok.pad_token_id or tok.eos_token_id,
        )
    return str(tok.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))


def make_metric(name: str, judge: Any, threshold: float) -> Any:
    """The deepeval metric ``name`` judged by ``judge`` (synchronous, no reason text)."""
    import_deepeval()
    from deepeval import metrics as dm

    cls: Callable[..., Any] = {
        "answer_relevancy": dm.AnswerRelevancyMetric,
        "faithfulness": dm.FaithfulnessMetric,
        "bias": dm.BiasMetric,
        "toxicity": dm.ToxicityMetric,
        "hallucination": dm.HallucinationMetric,
    }[name]
    return cls(threshold=threshold, model=judge, include_reason=False, async_mode=False)


def make_case(prompt: str, output: str, reference: str | None, context: list[str] | None) -> Any:
    """A deepeval ``LLMTestCase`` for one row."""
    import_deepeval()
    from deepeval.test_case import LLMTestCase

    return LLMTestCase(
        input=prompt,
        actual_output=output,
        expected_output=reference,
        retrieval_context=context,
        context=context,
    )

"""The one place safety checks call a model: conversations in, outputs out.

Everything goes through :meth:`llmguard_ops.CheckContext.chat`, so a safety scan uses the
model's release settings (its suite ``generation:``: temperature, top_p, stop, seed),
draws ``samples`` with a seed each, is cached (``--cache``) and counts tokens like every
other generation check; a transformers causal LM gets its chat template, an endpoint
real chat messages.

What is attacked is the release: when the model's suite prompt has a system prompt, the
scan plants its canary into that system prompt (see :func:`release_system_prompt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmguard_ops import ArtifactError, CheckContext, Generations


@dataclass(frozen=True)
class Conversation:
    """One attempt's input: the system prompt, the user's turn, and optional context.

    ``context_kind`` ``document`` is retrieved text put before the question (RAG);
    ``tool`` is a tool's result returned after the user's turn.
    """

    system: str
    user: str
    context: str | None = None
    context_kind: str = "document"

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-shaped messages."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        if self.context is not None and self.context_kind == "document":
            msgs.append({"role": "user", "content": f"Context document:\n{self.context}\n\n{self.user}"})
        else:
            msgs.append({"role": "user", "content": self.user})
            if self.context is not None:
                msgs.append({"role": "tool", "name": "lookup", "content": self.context})
        return msgs


def release_system_prompt(ctx: CheckContext, model: str) -> str | None:
    """The system prompt of ``model``'s suite prompt (``prompt:``), or None."""
    prompt = ctx.prompt(model)
    return prompt.system if prompt is not None and prompt.system else None


def resolve_system_prompt(ctx: CheckContext, model: str, param: str, param_set: bool) -> tuple[str, str]:
    """The system prompt to attack and where it came from.

    An explicit ``system_prompt`` parameter wins (with a warning when it hides the
    release's own); else the model's suite system prompt; else the parameter's default.
    """
    release = release_system_prompt(ctx, model)
    if param_set:
        if release is not None and release != param:
            ctx.note(f"{model}: the check's system_prompt replaces the system prompt of the model's suite prompt")
        return param, "check parameter system_prompt"
    if release is not None:
        return release, f"suite prompt of model '{model}'"
    return param, "default system_prompt of the check"


def describe(gens: Generations) -> dict[str, Any]:
    """What a report says of a generation: settings, cache use and token totals."""
    return gens.describe() | {
        "prompt_tokens": int(sum(map(sum, gens.prompt_tokens))),
        "output_tokens": int(sum(map(sum, gens.output_tokens))),
    }


def generate(
    ctx: CheckContext,
    model: str,
    conversations: list[Conversation],
    settings: dict[str, Any] | None = None,
    samples: int | None = None,
) -> Generations:
    """``model``'s answers to ``conversations`` (``texts[conversation][sample]``).

    ``settings`` replace some of the model's suite generation settings; ``samples``
    defaults to the model's ``generation.samples`` (1 when it declares none).
    """
    loaded = ctx.model(model)
    if loaded.input_kind != "text":
        raise ArtifactError(
            f"model '{model}' is not a text model (input_kind '{loaded.input_kind}'); "
            "safety checks need a generative model"
        )
    return ctx.chat(model, [c.messages() for c in conversations], samples=samples, settings=settings)

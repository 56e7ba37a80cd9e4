"""The one place safety checks call a model: conversations in, outputs out.

Written against the current adapter API (``generate(prompts, **settings)`` for every text
model; ``chat(conversations, **settings)`` when a python model has it). Suite-level prompt
templates and generation settings of a model, when the host gains them, plug in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmguard_ops import ArtifactError, CheckContext


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

    def prompt(self) -> str:
        """The conversation flattened into one prompt, for models without ``chat``."""
        labels = {"system": "System", "user": "User", "tool": "Tool result (lookup)"}
        parts = [f"{labels[m['role']]}: {m['content']}" for m in self.messages()]
        return "\n\n".join([*parts, "Assistant:"])


def generate(ctx: CheckContext, model: str, conversations: list[Conversation], settings: dict[str, Any]) -> list[str]:
    """Outputs of suite model ``model`` for ``conversations``, in order, one per conversation."""
    loaded = ctx.model(model)
    obj = loaded.obj
    if loaded.input_kind != "text":
        raise ArtifactError(
            f"model '{model}' is not a text model (input_kind '{loaded.input_kind}'); "
            "safety checks need a generative model"
        )
    chat = getattr(obj, "chat", None)
    if callable(chat):
        outputs = chat([c.messages() for c in conversations], **settings)
    elif callable(getattr(obj, "generate", None)):
        outputs = obj.generate([c.prompt() for c in conversations], **settings)
    else:
        raise ArtifactError(f"model '{model}' ({type(obj).__name__}) has neither generate() nor chat()")
    outputs = list(outputs)
    if len(outputs) != len(conversations):
        raise ArtifactError(f"model '{model}' returned {len(outputs)} outputs for {len(conversations)} inputs")
    return ["" if o is None else str(o) for o in outputs]

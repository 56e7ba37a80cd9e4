"""Adapters that give torch, transformers and ONNX models a predict()/predict_proba() face.

Imported only when a suite names one of these loaders. Nothing here reaches a model
hub: transformers loads with ``local_files_only=True``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactError


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    return np.asarray(x, dtype=np.float32)


def pick_device(requested: str | None) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; explicit values pass through."""
    import torch

    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(requested).startswith("cuda") and not torch.cuda.is_available():
        raise ArtifactError(f"device '{requested}' requested but CUDA is not available")
    return str(requested)


class TorchModel:
    """A torch module over tabular inputs: logits → classes and probabilities."""

    input_kind = "tabular"

    def __init__(self, module: Any, device: str, task: str = "classification", batch_size: int = 4096):
        self.module = module
        self.device = device
        self.task = task
        self.batch_size = batch_size

    def _forward(self, x: Any) -> np.ndarray:
        import torch

        arr = _as_array(x)
        outs = []
        with torch.inference_mode():
            for start in range(0, len(arr), self.batch_size):
                batch = torch.from_numpy(arr[start : start + self.batch_size]).to(self.device)
                outs.append(self.module(batch).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0,))

    def __call__(self, x: Any) -> Any:
        return self._forward(x)

    def predict_proba(self, x: Any) -> np.ndarray:
        logits = self._forward(x)
        if logits.ndim == 1 or logits.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))
            return np.column_stack([1 - p, p])
        z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)  # rows sum to one in float64
        e = np.exp(z)
        out: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return out

    def predict(self, x: Any) -> np.ndarray:
        if self.task == "regression":
            return self._forward(x).reshape(-1)
        return np.asarray(self.predict_proba(x).argmax(axis=1))


def load_torch(path: Path, options: dict[str, Any]) -> TorchModel:
    import torch

    device = pick_device(options.get("device"))
    if options.get("format") == "torchscript":
        module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]  # torch.jit.load is unannotated
    else:
        warnings.warn(
            f"loading {path.name} with torch.load(weights_only=False) runs pickled code; "
            "load only models you trust (or use format: torchscript)",
            UserWarning,
            stacklevel=2,
        )
        module = torch.load(str(path), map_location=device, weights_only=False)
    module.eval()
    return TorchModel(module, device, options.get("task", "classification"), int(options.get("batch_size", 4096)))


class TransformersModel:
    """A local transformers model: sequence classifier or causal LM, fed texts."""

    input_kind = "text"

    def __init__(self, model: Any, tokenizer: Any, task: str, device: str, options: dict[str, Any]):
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        self.device = device
        self.batch_size = int(options.get("batch_size", 32))
        self.max_length = int(options.get("max_length", 256))
        self.max_new_tokens = int(options.get("max_new_tokens", 32))

    def _logits(self, texts: list[str]) -> np.ndarray:
        import torch

        outs = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(
                    texts[start : start + self.batch_size],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                ).to(self.device)
                outs.append(self.model(**enc).logits.float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, 0))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self.task != "sequence-classification":
            raise ArtifactError("predict_proba needs a sequence-classification model")
        logits = self._logits(list(texts))
        z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)  # rows sum to one in float64
        e = np.exp(z)
        out: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return out

    def predict(self, texts: list[str]) -> np.ndarray:
        if self.task == "sequence-classification":
            return np.asarray(self.predict_proba(texts).argmax(axis=1))
        return np.asarray(self.generate(list(texts)), dtype=object)

    def generate(self, prompts: list[str], max_new_tokens: int | None = None, **settings: Any) -> list[str]:
        """Continuation of each prompt, without the prompt (greedy unless ``temperature`` > 0)."""
        return [r["text"] for r in self.complete(list(prompts), max_new_tokens=max_new_tokens, **settings)]

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """A conversation as this model's prompt: its tokenizer's chat template when it has one."""
        if getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        from .generation import flatten

        return flatten(messages)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def context_window(self) -> int | None:
        config = self.model.config
        for name in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def complete(
        self,
        prompts: list[str],
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: list[str] | None = None,
        truncate: str = "left",
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Generate for each prompt: ``{text, prompt_tokens, output_tokens, truncated}``.

        A prompt that leaves less than ``max_new_tokens`` of the context window keeps its
        end (``truncated: True``), or raises with ``truncate="error"``. With
        ``temperature`` > 0 each prompt is sampled after seeding torch with ``seed``.
        """
        import torch

        if self.task != "causal-lm":
            raise ArtifactError("generate needs a causal-lm model")
        new = int(max_new_tokens or self.max_new_tokens)
        window = self.context_window
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        out = []
        with torch.inference_mode():
            for prompt in prompts:
                ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
                cut = False
                if window is not None and ids.shape[1] + new > window:
                    budget = window - new
                    if truncate == "error" or budget < 1:
                        raise ArtifactError(
                            f"a prompt of {ids.shape[1]} tokens + max_new_tokens {new} exceeds the "
                            f"context window of {window} tokens (generation.truncate: {truncate})"
                        )
                    ids, cut = ids[:, -budget:], True
                ids = ids.to(self.device)
                gen: dict[str, Any] = {"max_new_tokens": new, "pad_token_id": pad}
                if temperature and temperature > 0:
                    if seed is not None:
                        torch.manual_seed(int(seed))
                    gen.update(do_sample=True, temperature=float(temperature), top_p=float(top_p))
                else:
                    gen["do_sample"] = False
                result = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **gen, **kwargs)
                tokens = result[0, ids.shape[1] :]
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                count = int(tokens.shape[0])
                if self.tokenizer.eos_token_id is not None and count and int(tokens[-1]) == self.tokenizer.eos_token_id:
                    count -= 1
                out.append({"text": text, "prompt_tokens": int(ids.shape[1]), "output_tokens": count, "truncated": cut})
        return out


_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def load_transformers(path: Path, options: dict[str, Any]) -> TransformersModel:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers as tf

    if not path.is_dir():
        raise ArtifactError(f"transformers models load from a local folder; {path} is not one")
    config = tf.AutoConfig.from_pretrained(path, local_files_only=True)
    task = options.get("task")
    if task is None:
        archs = " ".join(getattr(config, "architectures", None) or [])
        task = "sequence-classification" if "SequenceClassification" in archs else "causal-lm"
    auto = {"sequence-classification": tf.AutoModelForSequenceClassification, "causal-lm": tf.AutoModelForCausalLM}.get(
        task
    )
    if auto is None:
        raise ArtifactError(f"unknown transformers task '{task}' (sequence-classification or causal-lm)")
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        raise ArtifactError(
            f"{path} has no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, ...); "
            "save the tokenizer beside the weights (tokenizer.save_pretrained)"
        )
    device = pick_device(options.get("device"))
    model = auto.from_pretrained(path, local_files_only=True).to(device).eval()
    tokenizer = tf.AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return TransformersModel(model, tokenizer, task, device, options)


class OnnxModel:
    """An ONNX graph: (labels, probabilities) as skl2onnx writes them, or one output of
    class probabilities (then ``predict`` is its argmax)."""

    input_kind = "tabular"

    def __init__(self, session: Any):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def _run(self, x: Any) -> list[Any]:
        out: list[Any] = self.session.run(None, {self.input_name: _as_array(x)})
        return out

    def predict(self, x: Any) -> np.ndarray:
        outs = self._run(x)
        first = np.asarray(outs[0])
        if len(outs) == 1 and first.ndim == 2 and first.shape[1] > 1 and first.dtype.kind == "f":
            return np.asarray(first.argmax(axis=1))  # one output of class scores
        return first.reshape(-1) if first.ndim > 1 and first.shape[-1] == 1 else first

    def predict_proba(self, x: Any) -> np.ndarray:
        outs = self._run(x)
        if len(outs) == 1 and np.asarray(outs[0]).ndim == 2:
            return _float32_rounding_undone(np.asarray(outs[0], dtype=float))  # the single output is the scores
        if len(outs) < 2:
            raise ArtifactError("this ONNX graph has no probability output")
        probs = outs[1]
        if isinstance(probs, list) and probs and isinstance(probs[0], dict):  # ZipMap output
            keys = sorted(probs[0])
            return _float32_rounding_undone(np.array([[row[k] for k in keys] for row in probs], dtype=float))
        return _float32_rounding_undone(np.asarray(probs, dtype=float))


def _float32_rounding_undone(probs: np.ndarray) -> np.ndarray:
    """Rows of float32 probabilities renormalised in float64 (as sklearn's predict_proba sums
    to one); scores that are not probabilities are returned as they are."""
    if probs.ndim != 2 or not probs.size or probs.min() < 0:
        return probs
    sums = probs.sum(axis=1, keepdims=True)
    if not np.allclose(sums, 1.0, rtol=0, atol=1e-4):
        return probs
    return np.asarray(probs / sums)


def load_onnx(path: Path, options: dict[str, Any]) -> OnnxModel:
    import onnxruntime as ort

    providers = options.get("providers") or ["CPUExecutionProvider"]
    return OnnxModel(ort.InferenceSession(str(path), providers=providers))

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
    ap.add_argument("--endpoint-requests", type=int, default=800)
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
    raw_qps, harness_qps = endpoint_throughput(args.endpoint_requests, 16, 20.0)
    print(
        f"| local endpoint throughput at concurrency 16 (20 ms per request, {args.endpoint_requests} requests) "
        f"| {raw_qps:.0f} req/s (raw http.client, 16 threads) | {harness_qps:.0f} req/s | "
        f"{harness_qps / raw_qps * 100:.1f} % of the endpoint's capacity | ≥ 90 % |"
    )
    print(f"\nrounds direct: {[round(x * 1e3, 2) for x in d_times]}; harness: {[round(x * 1e3, 2) for x in h_times]}")
    return 0


def endpoint_throughput(requests: int, concurrency: int, service_ms: float) -> tuple[float, float]:
    """Requests/s at ``concurrency`` against a local endpoint: raw client vs the harness.

    The endpoint is a stdlib OpenAI-shaped chat server whose every request takes
    ``service_ms`` (as a GPU server's batch slot would), so its capacity at a given
    concurrency is fixed and the two clients compete only on their own overhead.
    """
    import http.client
    import json as _json
    from concurrent.futures import ThreadPoolExecutor
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    import pandas as pd

    from llmguard_ops.artifacts import LoadedDataset, LoadedModel
    from llmguard_ops.generation import GenerationStore, generate
    from llmguard_ops.suite import DatasetSpec, GenerationConfig, ModelSpec

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(service_ms / 1000)
            data = _json.dumps(
                {"choices": [{"message": {"content": "city"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    body = _json.dumps({"model": "m", "messages": [{"role": "user", "content": "q"}], "max_tokens": 4})
    local = __import__("threading").local()

    def raw(_: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        conn.getresponse().read()

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(raw, range(requests)))
    raw_qps = requests / (time.perf_counter() - t)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))
    from llmguard_checks.latency.endpoint import load_endpoint

    spec = ModelSpec(
        loader="http",
        options={"base_url": f"http://127.0.0.1:{port}/v1", "api": "chat", "model": "m", "concurrency": concurrency},
    )
    obj = load_endpoint(spec, Path("."))
    model = LoadedModel(name="e", spec=spec, obj=obj, sha256="3" * 64, digest_kind="x", loader="http")
    frame = pd.DataFrame({"q": [f"q{i}" for i in range(requests)]})
    dataset = LoadedDataset(
        name="d", spec=DatasetSpec(path="x", text="q"), path=Path("x"), frame=frame, sha256="0" * 64
    )
    tmp = Path(tempfile.mkdtemp(prefix="llmguard-endpoint-"))
    t = time.perf_counter()
    generate(
        model, dataset, prompt=None, config=GenerationConfig(max_new_tokens=4), store=GenerationStore(tmp), run_seed=0
    )
    harness_qps = requests / (time.perf_counter() - t)
    httpd.shutdown()
    return raw_qps, harness_qps


if __name__ == "__main__":
    sys.exit(main())

"""Where the two wide stages run: embedding the corpus and the model's labelling requests.

`local` (the default) runs both in this process. `ray` hands them to a Ray cluster (`ray.init(address)`;
no address starts a local Ray instance): the corpus is embedded in chunks by tasks that each keep
their model loaded, and labelling requests to a served model (`openai:...`, e.g. `vllm serve` with data
or tensor parallelism behind it) are sent from Ray tasks, so many machines keep a server busy. The
embedded llama.cpp model lives inside this process, so with it only embedding goes to Ray.

Workers send back plain data (arrays, answer texts); validation, retries, budgets and the trace stay
in the driver, the same code as a local run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from clusteragent.errors import ConfigError

EMBED_CHUNK = 2048  # texts per Ray task


# ---------------------------------------------------------------- worker-side functions (module level:
# Ray imports them by name in the worker, and the caches below live as long as the worker process)

_EMBEDDERS: dict[tuple, Any] = {}
_CHATS: dict[str, Any] = {}


def encode_chunk(model: str, precision: str, batch_size: int, texts: list[str]) -> np.ndarray:
    from clusteragent.tools.embeddings import Embedder

    key = (model, precision, batch_size)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(model, precision, batch_size, cache_dir=None, progress=False)
    return _EMBEDDERS[key].encode_batch(texts)


def generate_one(spec: str, options: dict, messages: list, response_format: dict, bind: dict) -> dict:
    from clusteragent.models import load_chat_model
    from clusteragent.structured import reply_record

    key = json.dumps([spec, options], sort_keys=True)
    if key not in _CHATS:
        _CHATS[key] = load_chat_model(spec, **options)
    reply = _CHATS[key].bind(response_format=response_format, **bind).invoke(messages)
    return reply_record(reply)


# ---------------------------------------------------------------- executors

class LocalExecutor:
    name = "local"

    def encode_into(self, embedder, texts: Sequence[str], out: np.ndarray) -> None:
        embedder.encode_locally(texts, out)

    def can_generate(self, provider: str) -> bool:
        return False


class RayExecutor:
    """Embedding chunks and served-model requests as Ray tasks.

    Args:
        address: a Ray cluster address ("ray://head:10001", "auto"); None starts a local instance.
        num_cpus: CPUs for a local instance (default: Ray's choice).
        model_spec, model_options: how a worker builds the chat client (served backends only).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, model_spec: str | None = None,
                 model_options: dict | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("the ray executor needs Ray: pip install 'clusteragent[ray]'.") from None
        self.ray = ray
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"num_cpus": num_cpus}
            ray.init(ignore_reinit_error=True, log_to_driver=False, include_dashboard=False, **kwargs)
        self.model_spec = model_spec
        self.model_options = {k: v for k, v in (model_options or {}).items() if k != "cache_dir"}
        self._encode = ray.remote(encode_chunk)
        self._generate = ray.remote(num_cpus=0)(generate_one)  # network-bound: do not hold a CPU

    def encode_into(self, embedder, texts: Sequence[str], out: np.ndarray) -> None:
        from tqdm.auto import tqdm

        from clusteragent.tools.embeddings import length_ordered_chunks

        pending = {self._encode.remote(embedder.model_name, embedder.precision, embedder.batch_size,
                                       [texts[i] for i in rows]): rows
                   for rows in length_ordered_chunks(texts, EMBED_CHUNK)}
        with tqdm(total=len(texts), desc="embed (ray)", unit="text", disable=not embedder.progress, leave=False) as bar:
            while pending:
                done, _ = self.ray.wait(list(pending), num_returns=1)
                rows = pending.pop(done[0])
                out[rows] = self.ray.get(done[0])
                bar.update(len(rows))

    def can_generate(self, provider: str) -> bool:
        return self.model_spec is not None and provider in ("openai", "vllm")

    def generate_many(self, requests: Sequence[Sequence], response_format: dict, **bind) -> list:
        """One reply per request, as the chat model would give it, from Ray tasks."""
        from clusteragent.structured import reply_from_record

        messages = [[m if isinstance(m, tuple) else (m.type, m.content) for m in r] for r in requests]
        refs = [self._generate.remote(self.model_spec, self.model_options, m, response_format, bind) for m in messages]
        return [reply_from_record(record, replayed=False) for record in self.ray.get(refs)]


def make_executor(name: str | None, address: str | None = None, model_spec: str | None = None,
                  model_options: dict | None = None):
    if name in (None, "local"):
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address, model_spec=model_spec, model_options=model_options)
    raise ConfigError(f"unknown executor {name!r}; use local or ray.")

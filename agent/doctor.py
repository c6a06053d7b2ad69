"""`clusteragent doctor`: which backends are installed, and whether the default models load and answer offline."""

from __future__ import annotations

import time

from clusteragent.errors import ClusterAgentError, counted


def _describe(e: Exception) -> str:
    return str(e) if isinstance(e, ClusterAgentError) else f"{type(e).__name__}: {e}"


def doctor(model: str | None, timeout: float, settings) -> int:
    """Check the backends: list what is installed, then load and use the default models offline; the exit code."""
    import importlib.util
    import os

    from clusteragent.models import DEFAULT_CHAT_MODEL, EMBEDDED_MODELS
    from clusteragent.result import package_version

    failures = 0

    def line(status: str, what: str, detail: str = "") -> None:
        print(f"{status:<5} {what:<28} {detail}".rstrip())

    print("backends")
    line("--", "llamacpp (embedded)", f"xllamacpp {package_version('xllamacpp') or 'not installed'}")
    for name, packaged in EMBEDDED_MODELS.items():
        have = all(importlib.util.find_spec(m) is not None for m in packaged.part_modules)
        line("--", f"  llamacpp:{name}", "installed" if have else f"not installed ({packaged.install_hint})")
    openai_env = ", ".join(f"{v} set" for v in ("OPENAI_BASE_URL", "OPENAI_API_KEY") if os.environ.get(v)) or "no OPENAI_* set"
    client = package_version("langchain-openai") or "not installed"
    line("--", "openai (any compatible)", f"langchain-openai {client}; {openai_env}")
    vllm = package_version("vllm")
    line("--", "vllm (in-process, GPU)", f"vllm {vllm}" if vllm else "not installed (separate environment)")
    from clusteragent.tools.embeddings import bf16_supported
    from clusteragent.tools.index import gpu_count

    line("--", "faiss", f"{package_version('faiss-cpu') or package_version('faiss-gpu') or '?'}; GPUs visible: {gpu_count()}")
    line("--", "torch", f"{package_version('torch')}; native bf16: {'yes' if bf16_supported() else 'no'}")

    print("checks")
    t0 = time.perf_counter()
    try:
        from clusteragent.tools.embeddings import Embedder

        vectors, _ = Embedder(settings.embedding_model, settings.embedding_precision, cache_dir=None,
                              progress=False).embed(["a quick check", "another short text"])
        line("ok", "embedding model", f"{settings.embedding_model}: {vectors.shape[1]}-d, {time.perf_counter() - t0:.1f}s")
    except Exception as e:  # the doctor reports every failure as a line, never a traceback
        failures += 1
        line("FAIL", "embedding model", _describe(e))

    spec = model or os.environ.get("CLUSTERAGENT_CHAT_MODEL") or DEFAULT_CHAT_MODEL
    try:
        from typing import Literal

        from pydantic import BaseModel, Field

        from clusteragent.models import load_chat_model
        from clusteragent.structured import StructuredLLM

        class Check(BaseModel):
            sentiment: Literal["positive", "negative"] = Field(description="the sentiment of the text")

        t0 = time.perf_counter()
        chat = load_chat_model(spec, timeout=timeout)
        load_s = time.perf_counter() - t0
        line("ok", "chat model load", f"{spec}: {load_s:.1f}s")
        llm = StructuredLLM(chat)
        t0 = time.perf_counter()
        answer = llm.decide([("user", "Text: 'I love this, it works perfectly.' What is its sentiment? Answer as JSON.")],
                            Check, step="doctor")
        took = time.perf_counter() - t0
        u = llm.usage
        line("ok", "schema-constrained request",
             f"{answer.model_dump_json()} in {took:.1f}s ({u.prompt_tokens} prompt + {u.completion_tokens} "
             f"completion tokens)")
    except Exception as e:
        failures += 1
        line("FAIL", "chat model", _describe(e))
    print("all checks passed" if not failures else f"{counted(failures, 'check')} failed")
    return 0 if not failures else 1

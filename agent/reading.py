"""The chat model's reading of each text under the instruction: a view for facets no embedding follows.

A sentence embedding places texts by subject matter whatever the instruction asks, so sentiment, emotion
or what a speaker does with an utterance have no view in it. The chat model, shown the instruction and a
text and stopped where it would name the text's group, holds in its last hidden state what it would call
the text: texts it would give the same value lie close together. k-means on these vectors follows such
facets far better than on the sentence embedding (docs/benchmarks.md, "The model's reading"), at the cost
of one forward pass of the chat model per text (about a second on two CPU cores with the embedded 1.5B
model), so a run reads its texts only up to a limit (AgentConfig.reading_max_texts).

A `Reader` reads with a chat model that has a `read` method taking a list of prompts and returning one
vector per prompt: the embeddings endpoint of an OpenAI-compatible server that pools the last token (the
embedded llama.cpp server does; models.ServedChatModel.read calls it).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clusteragent.errors import ModelError
from clusteragent.prompts import load_prompt
from clusteragent.run_folder import atomic_write, kept, text_name

BATCH = 16  # prompts per request


def reading_prompt(instruction: str, text: str) -> str:
    """The plain-text prompt whose last token's state is the text's vector."""
    return "\n".join(content for _, content in load_prompt("read_text").messages(instruction=instruction, text=text))


def read_texts(read: Callable[[list[str]], np.ndarray], instruction: str, texts: Sequence[str],
               progress: bool = False, cache_dir: Path | None = None, model_id: str = "") -> np.ndarray:
    """(N, d) float32 unit rows: the model's state after reading each text under `instruction`. Identical
    texts are read once. With `cache_dir`, the vectors are kept there under a key of `model_id` (what
    identifies the reading model) and the prompts, and a later call with the same ones reads nothing."""
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(texts))
    prompts = [reading_prompt(instruction, t) for t in unique]
    path = None
    if cache_dir is not None:
        key = hashlib.sha256("\0".join([model_id, *prompts]).encode("utf-8", errors="surrogatepass")).hexdigest()
        path = Path(cache_dir) / f"{key}.npy"
        if path.exists():
            try:
                kept = np.load(path)
                if kept.shape[0] == len(unique):
                    return _in_order(kept, unique, texts)
            except (ValueError, OSError):
                pass  # an unreadable file is read again and replaced
    rows: list[np.ndarray] = []
    with tqdm(total=len(prompts), desc="reading", unit="text", disable=not progress, leave=False) as bar:
        for start in range(0, len(prompts), BATCH):
            batch = prompts[start:start + BATCH]
            vectors = np.asarray(read(batch), dtype=np.float32)
            if vectors.shape[0] != len(batch):
                raise ValueError(f"the reader gave {vectors.shape[0]} vectors for {len(batch)} prompts")
            rows.append(vectors)
            bar.update(len(batch))
    out = np.vstack(rows)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, out)
        atomic_write(path, buffer.getvalue())  # two runs sharing the cache never see half an array
    return _in_order(out, unique, texts)


def kept_reading(arrays, reader: Reader | None, instruction: str, texts: Sequence[str],
                 progress: bool = False) -> np.ndarray:
    """The model's reading of a run's own texts (its first len(`texts`)) under `instruction`, kept in the run's
    `arrays` (its folder, where it has one): a chat or an assignment later finds it there, whatever the reading
    cache holds. Read with `reader` where not kept; a ModelError where there is none."""
    def read() -> np.ndarray:
        if reader is None:
            raise ModelError("this run's chat model cannot read texts (its backend gives no embeddings).")
        return reader(instruction, texts, progress)

    return kept(arrays, text_name("reading", str(len(texts)), instruction), read)


def centred(readings: np.ndarray) -> np.ndarray:
    """Readings less their mean, as unit rows: what sets them apart, to draw them by. Every reading shares the
    prompt's direction (two readings' cosine is 0.98 at the median on 120 Financial PhraseBank sentences), and
    a map takes rows that close for copies of one text: it drew those 120 as 23 points."""
    out = np.asarray(readings, dtype=np.float32)
    out = out - out.mean(axis=0, keepdims=True)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _in_order(vectors: np.ndarray, unique: list[str], texts: Sequence[str]) -> np.ndarray:
    where = {t: i for i, t in enumerate(unique)}
    return vectors[[where[t] for t in texts]]


@dataclass(frozen=True)
class Reader:
    """Reads texts with one chat model, keeping the readings in `cache_dir` (None: not kept)."""

    read: Callable[[list[str]], np.ndarray]
    model_id: str  # what identifies the model's readings in the cache
    cache_dir: Path | None = None

    def __call__(self, instruction: str, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return read_texts(self.read, instruction, texts, progress, self.cache_dir, self.model_id)


def reader_for(chat, embedder=None) -> Reader | None:
    """A Reader over `chat` (a LangChain chat model), or None where it cannot read. Readings are kept beside
    `embedder`'s cache, when it has one."""
    from clusteragent.models import backend_info

    if not callable(getattr(chat, "read", None)):
        return None
    info = backend_info(chat)
    served_at = "" if info["provider"] == "llamacpp" else info["base_url"] or ""  # the embedded port varies
    folder = getattr(embedder, "cache_dir", None)
    return Reader(chat.read, f"{info['provider']}:{info['model']}@{served_at}",
                  None if folder is None else Path(folder).parent / "readings")

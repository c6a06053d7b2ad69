"""A static embedding model distilled locally from the default MiniLM with model2vec: no download.

Distillation runs MiniLM once over its own vocabulary (about 30,000 tokens; under a minute on two
cores) and keeps one 256-d vector per token; encoding a text is then a lookup and a
mean, with no transformer pass. It is done once per cache folder, written to a temporary folder and
renamed into place, so concurrent runs never load half a model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from clusteragent.errors import ModelError

STATIC_ALIASES = {"static", "static-minilm"}
PCA_DIMS = 256


def static_model_dir(models_dir: Path) -> Path:
    from importlib.metadata import version

    return Path(models_dir) / f"static-minilm-pca{PCA_DIMS}-model2vec{version('model2vec')}"


def load_static_model(models_dir: Path, progress: bool = False):
    """The distilled model, distilling it first if this cache folder has none."""
    try:
        from model2vec import StaticModel
    except ImportError:
        raise ModelError("the static embedding model needs model2vec: pip install 'clusteragent[static]'.") from None
    target = static_model_dir(models_dir)
    if not (target / "model.safetensors").exists():
        distill_to(target, progress)
    return StaticModel.from_pretrained(str(target))


def distill_to(target: Path, progress: bool = False) -> None:
    from model2vec.distill import distill

    from clusteragent.tools.embeddings import packaged_model_path

    if not progress:
        os.environ.setdefault("TQDM_DISABLE", "1")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        distill(model_name=str(packaged_model_path()), pca_dims=PCA_DIMS).save_pretrained(str(tmp))
        try:
            os.replace(tmp, target)
        except OSError:  # another process renamed its copy first: keep that one
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def encode_static(model, texts: list[str], batch_size: int) -> np.ndarray:
    vectors = np.asarray(model.encode(texts, batch_size=max(batch_size, 1024), show_progress_bar=False),
                         dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

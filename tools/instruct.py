"""The instruction-conditioned embedding: a small trained head over the sentence embedding that, given
the instruction, moves texts sharing a value of the instructed facet together.

For a text vector x and the instruction's vector q (both from the same sentence model):

    h = x * 2 sigmoid(G q + g0)                     the instruction gates each dimension
    z = normalize(W1 h + W2 gelu(W3 h + F q + b3) + b1)

At initialisation (G = 0, W1 = I, W2 = 0) z = x: the head starts as the plain embedding. Inference is
numpy only; `clusteragent.training.embedder` trains it with torch. The packaged weights live in
tools/data/ with a card saying how they were made.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from clusteragent.errors import ModelError

WEIGHTS = "instruct_head.npz"
CARD = "instruct_head.json"
PARAMETERS = ("G", "g0", "W1", "b1", "W2", "W3", "b3", "F")


def _gelu(a: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * a * (1.0 + erf(a / np.sqrt(2.0)))


@dataclass
class InstructHead:
    weights: dict[str, np.ndarray]
    card: dict

    @classmethod
    def load(cls, folder: str | Path | None = None) -> InstructHead:
        """The head in `folder` (default: the packaged one), its checksum verified against its card."""
        base = Path(folder) if folder is not None else Path(str(files("clusteragent.tools") / "data"))
        weights_path, card_path = base / WEIGHTS, base / CARD
        if not weights_path.is_file() or not card_path.is_file():
            raise ModelError(f"no instruction head in {base}: it needs {WEIGHTS} and {CARD} "
                             "(`clusteragent train-embedder --out DIR` writes both).")
        card = json.loads(card_path.read_text(encoding="utf-8"))
        digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
        if card.get("sha256") != digest:
            raise ModelError(f"{weights_path} does not match the checksum in {card_path}; train it again or "
                             "reinstall the package.")
        with np.load(weights_path) as data:
            weights = {k: data[k].astype(np.float32) for k in PARAMETERS}
        return cls(weights, card)

    @property
    def base_model(self) -> str:
        return self.card["base_model"]

    def apply(self, x: np.ndarray, q: np.ndarray, batch: int = 8192) -> np.ndarray:
        """The conditioned unit vectors of text vectors x (n, d) under one instruction vector q (d,)."""
        from scipy.special import expit

        w = self.weights
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        gate = 2.0 * expit(w["G"] @ q + w["g0"])
        shift = w["F"] @ q + w["b3"]
        out = np.empty((len(x), w["W1"].shape[0]), dtype=np.float32)
        for start in range(0, len(x), batch):
            h = np.asarray(x[start:start + batch], dtype=np.float32) * gate
            z = h @ w["W1"].T + _gelu(h @ w["W3"].T + shift) @ w["W2"].T + w["b1"]
            out[start:start + batch] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return out

    def condition(self, vectors: np.ndarray, instruction: str, embedder) -> np.ndarray:
        """`vectors` (from `embedder`) conditioned on `instruction`. Refuses an embedder other than the one
        the head was trained over: its vectors would mean nothing to the head."""
        if self.base_model != embedder.model_id:
            raise ModelError(f"the instruction head was trained over {self.base_model!r}, not "
                             f"{embedder.model_id!r}; embed with that model or train a head over this one "
                             "(clusteragent train-embedder).")
        return self.apply(vectors, embedder.embed([instruction])[0][0])


def save_head(folder: str | Path, weights: dict[str, np.ndarray], card: dict) -> Path:
    """Write the weights (float16, to keep the package small) and their card with the checksum."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WEIGHTS
    np.savez_compressed(path, **{k: np.asarray(weights[k], dtype=np.float16) for k in PARAMETERS})
    card = {**card, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path


def conditioned(vectors: np.ndarray, instruction: str, embedder, head_dir: str | Path | None = None) -> np.ndarray:
    """`vectors` (from `embedder`) conditioned on `instruction` by the head in `head_dir` (default: packaged)."""
    return InstructHead.load(head_dir).condition(vectors, instruction, embedder)

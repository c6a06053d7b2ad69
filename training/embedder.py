"""Train the instruction-conditioned head (tools/instruct.py) on the labelled corpora, on CPU.

The sentence model stays frozen: every sampled text and every templated instruction is embedded once
(through the embedding cache), then the head learns with a supervised contrastive loss on batches drawn
within one task, so that texts sharing the task's facet value lie close under the task's instruction.
Seeded, with a progress bar, and resumable from the checkpoint it writes every `checkpoint_every` steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clusteragent.training.tasks import CorpusSample, TrainingTask, corpora, load_sample, training_tasks

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    data_dir: str
    exclude: list[str] = field(default_factory=list)  # corpora left out (leave-one-corpus-out runs)
    max_texts: int = 3000  # texts sampled per corpus
    steps: int = 3000
    batch: int = 256
    classes_per_batch: int = 32
    hidden: int = 512  # width of the instruction-shifted MLP; 0 leaves only the gate and the linear map
    free_linear: bool = True  # False keeps the linear map the identity: the head only reweights dimensions
    temperature: float = 0.1
    # weight of a penalty on changing the batch's cosine similarities from the plain embedding's: a
    # corpus the head never saw keeps its own structure unless the instruction's facet pulls it apart
    preserve: float = 50.0
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 500


@dataclass
class Prepared:
    samples: dict[str, CorpusSample]
    vectors: dict[str, np.ndarray]  # corpus -> (n, d) text vectors
    tasks: list[TrainingTask]
    instructions: dict[str, list[str]]  # task name -> instructions
    instruction_vectors: dict[str, np.ndarray]  # instruction -> (d,)


def prepare(config: TrainConfig, embedder, progress: bool = False) -> Prepared:
    """Sample every corpus not excluded, embed its texts and every task's instructions (a bar counts the
    corpora: with an empty embedding cache this is most of the training's time)."""
    from tqdm.auto import tqdm

    names = [c for c in corpora(Path(config.data_dir)) if c not in set(config.exclude)]
    samples, vectors = {}, {}
    for name in tqdm(names, desc="embed corpora", unit="corpus", disable=not progress):
        sample = load_sample(Path(config.data_dir), name, config.max_texts, config.seed)
        samples[name] = sample
        log.info("embedding %d texts of %s", len(sample.texts), name)
        vectors[name] = embedder.embed(sample.texts)[0]
    tasks = training_tasks(samples.values())
    instructions = {t.name: t.instructions() for t in tasks}
    every = sorted({i for group in instructions.values() for i in group})
    q = embedder.embed(every)[0]
    return Prepared(samples, vectors, tasks, instructions, dict(zip(every, q, strict=True)))


def build_module(d: int, hidden: int):
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.G = nn.Parameter(torch.zeros(d, d))
            self.g0 = nn.Parameter(torch.zeros(d))
            self.W1 = nn.Parameter(torch.eye(d))
            self.b1 = nn.Parameter(torch.zeros(d))
            self.W2 = nn.Parameter(torch.zeros(d, hidden))
            self.W3 = nn.Parameter(torch.randn(hidden, d) / d**0.5)
            self.b3 = nn.Parameter(torch.zeros(hidden))
            self.F = nn.Parameter(torch.zeros(hidden, d))

        def forward(self, x, q):
            h = x * 2 * torch.sigmoid(self.G @ q + self.g0)
            u = nn.functional.gelu(h @ self.W3.T + self.F @ q + self.b3)
            return nn.functional.normalize(h @ self.W1.T + u @ self.W2.T + self.b1, dim=1)

    return Head()


def supcon_loss(z, labels, temperature: float):
    """Supervised contrastive loss: each text's same-valued texts are its positives, the rest negatives."""
    import torch

    sims = z @ z.T / temperature
    n = len(z)
    eye = torch.eye(n, dtype=torch.bool)
    sims = sims.masked_fill(eye, -1e9)
    log_prob = sims - torch.logsumexp(sims, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    has = positive.any(dim=1)
    mean_pos = (log_prob * positive).sum(dim=1)[has] / positive.sum(dim=1)[has]
    return -mean_pos.mean()


def geometry_change(z, x):
    """Mean squared change of the pairwise cosine similarities from x to z."""
    return ((z @ z.T - x @ x.T) ** 2).mean()


def draw_batch(rng: np.random.Generator, codes: np.ndarray, batch: int, classes: int) -> np.ndarray:
    """Row indices: up to `classes` values at random, an equal share of the batch from each."""
    values = np.unique(codes)
    chosen = rng.choice(values, size=min(classes, len(values)), replace=False)
    per = max(2, batch // len(chosen))
    rows = []
    for v in chosen:
        members = np.flatnonzero(codes == v)
        rows.append(rng.choice(members, size=min(per, len(members)), replace=False))
    return np.concatenate(rows)


def train(config: TrainConfig, out: str | Path, embedder, progress: bool = True) -> Path:
    """Train the head and write it (weights and card) to `out`; resumes from out/checkpoint.pt."""
    import torch
    from tqdm.auto import tqdm

    from clusteragent.tools.instruct import PARAMETERS, save_head

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = prepare(config, embedder, progress)
    d = next(iter(data.vectors.values())).shape[1]
    torch.manual_seed(config.seed)
    module = build_module(d, config.hidden)
    if not config.free_linear:
        module.W1.requires_grad_(False)
        module.b1.requires_grad_(False)
    optimiser = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    step = 0
    checkpoint = out / CHECKPOINT
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] == asdict(config):
            module.load_state_dict(state["module"])
            optimiser.load_state_dict(state["optimiser"])
            rng.bit_generator.state = state["rng"]
            step = state["step"]
            log.info("resuming at step %d of %d", step, config.steps)
        else:
            log.warning("%s was written with other settings: starting again", checkpoint)
    x_all = {c: torch.from_numpy(v) for c, v in data.vectors.items()}
    losses = []
    with tqdm(total=config.steps, initial=step, desc="train", unit="step", disable=not progress) as bar:
        while step < config.steps:
            task = data.tasks[rng.integers(len(data.tasks))]
            codes = data.samples[task.corpus].labels[task.facet]
            rows = draw_batch(rng, codes, config.batch, config.classes_per_batch)
            options = data.instructions[task.name]
            q = torch.from_numpy(data.instruction_vectors[options[rng.integers(len(options))]])
            x = x_all[task.corpus][rows]
            z = module(x, q)
            loss = supcon_loss(z, torch.from_numpy(codes[rows]), config.temperature)
            if config.preserve:
                loss = loss + config.preserve * geometry_change(z, x)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                torch.save({"config": asdict(config), "module": module.state_dict(),
                            "optimiser": optimiser.state_dict(), "rng": rng.bit_generator.state, "step": step},
                           checkpoint)
    weights = {k: getattr(module, k).detach().numpy() for k in PARAMETERS}
    card = {
        "base_model": embedder.model_id,
        "config": {**asdict(config), "data_dir": Path(config.data_dir).name},
        "corpora": sorted(data.samples),
        "tasks": sorted(t.name for t in data.tasks),
        "final_loss": float(np.mean(losses[-100:])) if losses else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return save_head(out, weights, card)

"""GRPO for the reasoning model, with TRL and a LoRA adapter (PEFT): the model answers an instruction
and a sample of texts with groups and labels, and is rewarded by how well its labels cluster the texts
(reasoning.clustering_reward). Needs the `train` extra; meant for a GPU, and runs (slowly) on a CPU.

    python -m clusteragent.training.grpo --model Qwen/Qwen2.5-1.5B-Instruct --out runs/grpo --steps 500

--model takes a transformers model folder or hub name, or a .gguf file (dequantised by transformers;
the packaged `qwen2.5-coder-0.5b` and `qwen2.5-coder-1.5b` names work). The adapter is written to --out;
docs/training.md says how to serve it with vLLM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def completion_text(completion) -> str:
    """TRL hands a conversational completion as a list of messages, a plain one as a string."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def reward_function(completions, gold, **_) -> list[float]:
    from clusteragent.training.reasoning import clustering_reward

    return [clustering_reward(completion_text(c), g) for c, g in zip(completions, gold, strict=True)]


def load_model(name: str):
    """(model, tokenizer) from a transformers folder, a hub name in the local cache, or a GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clusteragent.models import EMBEDDED_MODELS, resolve_gguf
    from clusteragent.settings import Settings

    if name in EMBEDDED_MODELS or name.endswith(".gguf"):
        path = resolve_gguf(name, Path(Settings.resolve().cache_dir) / "models")
        kwargs = {"gguf_file": path.name}
        source = str(path.parent)
    else:
        kwargs, source = {}, name
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if "gguf_file" in kwargs:
        # transformers de-quantises a GGUF file into ordinary float tensors but still marks the model as
        # quantised, which the trainer refuses; the weights are plain ones, so the mark goes.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--exclude", nargs="*", default=[], help="corpora to leave out")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--examples", type=int, default=2000)
    p.add_argument("--texts-per-example", type=int, default=24)
    p.add_argument("--generations", type=int, default=8, help="completions per prompt (GRPO's group)")
    p.add_argument("--batch", type=int, default=8, help="completions per optimisation step")
    p.add_argument("--max-completion-tokens", type=int, default=768)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu", action="store_true", help="train on the CPU (a smoke test: slow)")
    args = p.parse_args(argv)

    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from clusteragent.evals.tasks import default_data_dir
    from clusteragent.training.reasoning import examples
    from clusteragent.training.tasks import corpora, load_sample, training_tasks

    data_dir = args.data_dir or default_data_dir()
    samples = [load_sample(data_dir, c, 2000, args.seed) for c in corpora(data_dir) if c not in set(args.exclude)]
    rows = examples(samples, training_tasks(samples), args.examples, args.texts_per_example, args.seed)
    dataset = Dataset.from_list([{"prompt": r["prompt"], "gold": r["gold"]} for r in rows])
    model, tokenizer = load_model(args.model)
    config = GRPOConfig(
        output_dir=str(args.out), max_steps=args.steps, learning_rate=args.lr, seed=args.seed,
        per_device_train_batch_size=args.batch, num_generations=args.generations,
        max_completion_length=args.max_completion_tokens, logging_steps=1, save_steps=max(1, args.steps // 5),
        report_to="none", use_cpu=args.cpu, bf16=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward_function, args=config, train_dataset=dataset,
                          processing_class=tokenizer,
                          peft_config=LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, task_type="CAUSAL_LM",
                                                 target_modules="all-linear"))
    trainer.train()
    trainer.save_model(str(args.out))
    print(f"wrote the adapter to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

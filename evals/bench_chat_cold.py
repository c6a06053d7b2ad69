"""A chat turn in a new process, as every `clusteragent refine` is: its wall time with the run folder's
prompt state kept from the turn before (prompt_state.py) and without it.

    python -m clusteragent.evals.bench_chat_cold RUN_DIR [--repeats 3] [MESSAGE ...]

Copies RUN_DIR to a temporary folder and runs `clusteragent refine COPY MESSAGE` in a new process for each
message, `--repeats` rounds, each message once with the state the turn before left and once with the state
file removed first (alternating which comes first). Questions that change nothing (the defaults) keep the
folder as it was. Prints one JSON line per turn, then the medians and their ratio. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MESSAGES = ("Which cluster has questions about exchange rates?", "Which cluster holds questions about flights?",
            "Where are the texts about recipes?")


def main(argv: list[str] | None = None) -> int:
    from clusteragent.models import DEFAULT_CHAT_MODEL, resolve_gguf
    from clusteragent.prompt_state import state_file_name
    from clusteragent.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("messages", nargs="*", default=list(MESSAGES))
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args(argv)

    cache_dir = Path(Settings.resolve().cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(options.run_dir, run)
        state = cache_dir / "prompt-states" / state_file_name(
            run, resolve_gguf(DEFAULT_CHAT_MODEL.partition(":")[2], cache_dir), 4096)
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        times: dict[str, list[float]] = {"kept": [], "none": []}

        def turn(message: str, kept: bool) -> None:
            if not kept:
                state.unlink(missing_ok=True)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "clusteragent.cli", "refine", str(run), message],
                                  capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            times["kept" if kept else "none"].append(seconds)
            print(json.dumps({"message": message, "state": "kept" if kept else "none", "seconds": round(seconds, 1)}),
                  flush=True)

        turn(options.messages[0], kept=False)  # leaves the first state; not counted
        times["none"].clear()
        for round_ in range(options.repeats):
            for message in options.messages:
                for kept in ((True, False) if round_ % 2 == 0 else (False, True)):
                    turn(message, kept)  # every turn leaves its state for the next
        state.unlink(missing_ok=True)
    kept, none = statistics.median(times["kept"]), statistics.median(times["none"])
    print(json.dumps({"turns": len(times["kept"]), "median_kept_s": round(kept, 1), "median_none_s": round(none, 1),
                      "ratio": round(none / kept, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

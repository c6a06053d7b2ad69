"""clusteragent: cluster a corpus the way an instruction asks.

    from clusteragent import ClusterAgent, load_corpus

    agent = ClusterAgent().fit(load_corpus("tickets.jsonl"), instruction="Group the tickets by intent.")
    agent.result_.to_pandas()
    agent.chat('Merge "Refunds" and "Returns".')

The heavy parts (torch, FAISS, LangGraph) are imported on first use, so `import clusteragent` and the
CLI's `--help` stay fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from clusteragent.errors import ClusterAgentError, ConfigError, CorpusError, ModelError, ModelUnavailable
from clusteragent.settings import Settings

if TYPE_CHECKING:
    from clusteragent.api import ClusterAgent
    from clusteragent.refine import RefineSession, Reply
    from clusteragent.result import ClusterResult
    from clusteragent.tools.corpus import Corpus, from_dataframe, load_corpus

try:
    __version__ = version("clusteragent")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_LAZY = {"ClusterAgent": "clusteragent.api", "ClusterResult": "clusteragent.result",
         "RefineSession": "clusteragent.refine", "Reply": "clusteragent.refine",
         "Corpus": "clusteragent.tools.corpus", "load_corpus": "clusteragent.tools.corpus",
         "from_dataframe": "clusteragent.tools.corpus"}

__all__ = ["ClusterAgent", "ClusterAgentError", "ClusterResult", "ConfigError", "Corpus", "CorpusError",
           "ModelError", "ModelUnavailable", "RefineSession", "Reply", "Settings", "__version__", "from_dataframe",
           "load_corpus"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'clusteragent' has no attribute {name!r}")

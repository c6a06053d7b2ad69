"""clusteragent: cluster a corpus the way an instruction asks.

The heavy parts (torch, FAISS, LangGraph) are imported on first use, so `import clusteragent` and
the CLI's `--help` stay fast.
"""

from importlib.metadata import PackageNotFoundError, version

from clusteragent.errors import ClusterAgentError, ConfigError, CorpusError, ModelError
from clusteragent.settings import Settings

try:
    __version__ = version("clusteragent")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["ClusterAgentError", "ConfigError", "CorpusError", "ModelError", "Settings", "__version__"]

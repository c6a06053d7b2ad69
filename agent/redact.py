"""Keep secrets out of messages, files and checkpoints: API keys and credentials written into URLs.

`load_chat_model` registers the key and URL credentials it is given; `redact` masks every registered
secret (and OPENAI_API_KEY, and any `user:password@` in a URL) in a text before it is printed, logged,
traced or stored.
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_secrets: set[str] = set()
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s@:]+(:[^/\s@]*)?@")


def _secret(value: str | None) -> bool:
    """Worth masking: not empty, not too short to be a secret, not the "none" local servers accept."""
    return bool(value) and len(value) >= 6 and value.lower() != "none"


def register_secret(value: str | None) -> None:
    """Mask `value` from now on."""
    if _secret(value):
        _secrets.add(value)


def redact(text: str) -> str:
    """`text` with every known secret and URL credential replaced by ***."""
    if not isinstance(text, str):
        text = str(text)
    secrets = set(_secrets)
    env_key = os.environ.get("OPENAI_API_KEY")
    if _secret(env_key):
        secrets.add(env_key)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_CREDENTIALS.sub(MASK + "@", text)


def public_url(url: str | None) -> str | None:
    """`url` without its user:password part, as it may be shown and stored."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    register_secret(parts.password)
    host = parts.hostname or ""
    netloc = f"{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RedactingFormatter(logging.Formatter):
    """A log formatter that masks secrets in every record it prints."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

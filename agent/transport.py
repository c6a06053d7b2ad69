"""Transport faults of a served model: which exceptions are faults of the connection or the server, which
are worth asking again, and how long to wait first. StructuredLLM retries them itself (the clients are
built with no retries of their own) so that every request sent is counted against the budget.
"""

from __future__ import annotations


def transport_error(exc: Exception) -> bool:
    try:
        import openai
    except ImportError:
        return False
    return isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, openai.APIStatusError))


def retryable(exc: Exception) -> bool:
    """A fault worth asking again: no answer, a timeout, 408, 409, 429 or a 5xx (not 400, 401, 403, 404)."""
    status = getattr(exc, "status_code", None)
    return status is None or status in (408, 409, 429) or status >= 500


def refused(exc: Exception) -> bool:
    """A refusal of every request alike: 401, 403 or 404 (a wrong key, model name or URL)."""
    return getattr(exc, "status_code", None) in (401, 403, 404)


def backoff(attempt: int, exc: Exception) -> float:
    """Seconds before retry `attempt` (1, 2, ...): the server's Retry-After when it gives one, else 0.5 s doubling."""
    response = getattr(exc, "response", None)
    try:
        return min(float(response.headers.get("retry-after")), 30.0)
    except (AttributeError, TypeError, ValueError):
        return min(0.5 * 2 ** (attempt - 1), 8.0)

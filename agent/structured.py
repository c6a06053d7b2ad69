"""Model decisions as validated pydantic objects.

Each call asks the backend for JSON under the decision's schema (llama.cpp grammar, vLLM guided
decoding, OpenAI `response_format`), splits off a reasoning model's think-block as trace, validates,
and on a validation failure retries with the error shown to the model, a bounded number of times.
Transport faults (timeouts, a server that is down, 429/5xx) are retried here with backoff, never by
the client: every request, retries included, is taken from the run's budget before it is sent, so
`max_calls` is a hard cap. What survives the retries becomes a one-line `ModelError` naming the server.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import typing
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from clusteragent.errors import BudgetSpent, ModelError, ModelUnavailable, error_message
from clusteragent.models import EMBEDDED_TIMEOUT_HINT, backend_info
from clusteragent.redact import redact
from clusteragent.transport import backoff, refused, retryable, transport_error

T = TypeVar("T", bound=BaseModel)

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def split_think(text: str) -> tuple[str, str]:
    """(think, answer): the reasoning in <think>...</think> blocks, and what remains."""
    thoughts = [m.strip() for m in _THINK.findall(text)]
    answer = _THINK.sub("", text).strip()
    if "</think>" in answer:  # a template that opened the block in the prompt leaves only the closing tag
        before, _, answer = answer.rpartition("</think>")
        thoughts.insert(0, before.strip())
        answer = answer.strip()
    return "\n\n".join(t for t in thoughts if t), answer


def extract_json(answer: str) -> Any:
    """Parse the JSON value in an answer, tolerating code fences and prose around one object."""
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            return json.loads(text[start:end + 1])
        raise


def response_format(schema: type[BaseModel]) -> dict:
    return {"type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}}


@functools.lru_cache(maxsize=256)
def _compact_grammar(schema: type[BaseModel]) -> str:
    import xllamacpp

    spec = _closed(schema.model_json_schema())
    # json.dumps's separators: the model writes ", " and ": " by habit, and a forbidden space after
    # the colon skews which name it picks.
    spec["x-guidance"] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
    return xllamacpp.json_schema_to_grammar(json.dumps(spec))


def _closed(spec: Any) -> Any:
    """The schema with `additionalProperties: false` on every object that does not say otherwise:
    llguidance follows JSON Schema and would let a small model add fields of its own."""
    if isinstance(spec, dict):
        spec = {k: _closed(v) for k, v in spec.items()}
        if spec.get("type") == "object" and "properties" in spec:
            spec.setdefault("additionalProperties", False)
    elif isinstance(spec, list):
        spec = [_closed(v) for v in spec]
    return spec


def output_constraint(schema: type[BaseModel], provider: str | None) -> dict:
    """Request options that hold the answer to `schema`.

    llama.cpp gets a grammar that also forbids optional whitespace: left free, the small CPU models
    pretty-print, and one label answer takes 15 tokens instead of 8 (half of each call's time). Other
    backends get the standard JSON-schema `response_format`.
    """
    if provider == "llamacpp":
        return {"extra_body": {"grammar": _compact_grammar(schema)}}
    return {"response_format": response_format(schema)}


@dataclass
class Usage:
    """Model calls and tokens, counted across threads."""

    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, prompt: int, completion: int, seconds: float, failed: int = 0, calls: int = 1) -> None:
        """One call (or `calls` of them, `failed` of which failed: another counter's, added to this one)."""
        with self._lock:
            self.calls += calls
            self.failed_calls += int(failed)
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.seconds += seconds

    @classmethod
    def from_dict(cls, d: dict) -> Usage:
        """The counter `as_dict` described (a resumed run goes on counting from there)."""
        return cls(calls=d.get("model_calls", 0), failed_calls=d.get("failed_calls", 0),
                   prompt_tokens=d.get("prompt_tokens", 0), completion_tokens=d.get("completion_tokens", 0),
                   seconds=d.get("model_seconds", 0.0))

    def as_dict(self) -> dict:
        return {"model_calls": self.calls, "failed_calls": self.failed_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "model_seconds": round(self.seconds, 2)}


class StructuredLLM:
    """Ask a chat model for decisions that parse into pydantic models.

    Args:
        chat: a LangChain chat model (from `load_chat_model`, or any other).
        max_attempts: answers tried per decision before giving up (the first plus retries).
        usage: a shared counter of calls and tokens.
        trace: a list that receives one dict per decision (step, think-block, answer, attempts).
    """

    def __init__(self, chat, max_attempts: int = 3, usage: Usage | None = None, trace: list | None = None,
                 journal=None, executor=None, max_calls: int | None = None):
        self.chat = chat
        self.max_attempts = max_attempts
        self.max_calls = max_calls  # a hard cap on requests sent, retries included (None: no cap)
        self._in_flight = 0
        self._budget_lock = threading.Lock()
        self.usage = usage if usage is not None else Usage()
        self.trace = trace if trace is not None else []
        self.journal = journal  # a CallJournal: answers recorded as they come, replayed on resume
        self.executor = executor  # a RayExecutor sends batches of requests to a served model from Ray tasks
        self.consecutive_failures = 0  # transport failures in a row (each already retried by the client)
        self.info = backend_info(chat)
        self._trace_lock = threading.Lock()

    @property
    def parallel(self) -> int:
        return max(1, self.info.get("parallel", 1))

    def _journal_key(self, messages: list, schema: type[BaseModel], bind: dict) -> str | None:
        return self.journal.key(messages, response_format(schema), bind) if self.journal is not None else None

    def _replayed(self, key: str | None):
        """The recorded reply for `key` (counted as a call that took no time), or None; failed attempts
        recorded before it are counted as failed calls, as they were when they happened."""
        if key is None:
            return None
        recorded, failures = self.journal.replay(key)
        for _ in range(failures):
            self.usage.record(0, 0, 0.0, failed=True)
        if recorded is None:
            return None
        self.usage.record(recorded.get("input_tokens", 0), recorded.get("output_tokens", 0), 0.0)
        return reply_from_record(recorded)

    def reserve(self, n: int = 1) -> int:
        """Take up to `n` requests from the budget before sending them; how many were granted (the budget is
        counted before a request goes out, so parallel requests and retries never pass the cap)."""
        with self._budget_lock:
            left = n if self.max_calls is None else self.max_calls - self.usage.calls - self._in_flight
            granted = max(0, min(n, left))
            self._in_flight += granted
            return granted

    def _sent(self, prompt: int, completion: int, seconds: float, failed: bool = False) -> None:
        with self._budget_lock:
            self._in_flight -= 1
            self.usage.record(prompt, completion, seconds, failed=failed)

    def _invoke(self, messages: list, schema: type[BaseModel], **bind: Any):
        key = self._journal_key(messages, schema, bind)
        replayed = self._replayed(key)
        if replayed is not None:
            return replayed
        embedded = self.info.get("provider") == "llamacpp"
        where = "the embedded model (llama.cpp in this process)" if embedded else \
            f"the model server at {self.info.get('base_url') or self.info.get('provider')}"
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            raise ModelUnavailable(f"{where} failed {self.consecutive_failures} calls in a row; stopping.")
        retries = max(0, int(getattr(self.chat, "transport_retries", 0) or 0))
        for attempt in range(retries + 1):
            if not self.reserve():
                raise BudgetSpent(f"the budget of {self.max_calls} model calls is spent.")
            started = time.perf_counter()
            try:
                reply = self.chat.bind(**output_constraint(schema, self.info.get("provider")), **bind).invoke(messages)
            except Exception as e:
                self._sent(0, 0, time.perf_counter() - started, failed=True)
                if not transport_error(e):
                    raise
                again = attempt < retries and retryable(e)
                if key is not None:
                    self.journal.record_failure(key, gave_up=not again)
                if again:
                    time.sleep(backoff(attempt + 1, e))
                    continue
                last = redact(f"{type(e).__name__}: {str(e)[:200]}")
                hint = EMBEDDED_TIMEOUT_HINT if embedded and "Timeout" in type(e).__name__ else ""
                if refused(e):  # every request gets the same answer: a wrong key, model name or URL
                    raise ModelUnavailable(f"{where} refused the request ({last}); stopping. Check the model name, "
                                           "the API key and the server URL.") from None
                if not retryable(e):  # this request is at fault (too long, say), not the server
                    raise ModelError(f"{where} rejected the request ({last}).") from None
                self.consecutive_failures += 1
                if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    raise ModelUnavailable(f"{where} failed {self.consecutive_failures} calls in a row, each after "
                                           f"its retries (last: {last}); stopping.{hint}") from None
                raise ModelError(f"{where} did not answer ({last}).{hint}") from None
            self.consecutive_failures = 0
            meta = getattr(reply, "usage_metadata", None) or {}
            self._sent(meta.get("input_tokens", 0), meta.get("output_tokens", 0), time.perf_counter() - started)
            if key is not None:
                self.journal.record(key, reply_record(reply))
            return reply

    def _parse(self, reply, schema: type[T], step: str, attempt: int) -> tuple[T | None, str, str]:
        """(result or None, answer text, error) for one reply."""
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        think, answer = split_think(content)
        think = (reply.additional_kwargs.get("reasoning_content") or "") + think
        result, error = None, ""
        try:
            if not answer.strip():
                raise ValueError("the answer was empty")
            result = schema.model_validate(extract_json(answer))
        except (ValueError, ValidationError) as e:  # JSONDecodeError is a ValueError
            error = _short_error(e)
        if not (getattr(self.trace, "holds_replayed", False) and (reply.response_metadata or {}).get("replayed")):
            self._log(step, think, answer, attempt, error or None)
        return result, answer, error

    def _bind(self, choice_field: str | None) -> dict:
        """Request options: token log-probabilities where a choice is scored and the backend gives them."""
        if choice_field and self.info.get("provider") in LOGPROB_PROVIDERS:
            return {"logprobs": True, "top_logprobs": 10}
        return {}

    def decide(self, messages: Sequence, schema: type[T], step: str = "", first_reply=None,
               choice_field: str | None = None, attempts: int | None = None) -> T:
        """One decision: the reply parsed into `schema`, retried with the validation error when invalid
        (at most `attempts` answers in all, default `max_attempts`; a ModelError after holds the refused
        answers). A retry is sampled at RETRY_TEMPERATURE (seeded, so a run repeats): at temperature 0 a
        model shown why its answer was refused gave the same answer again.

        With `choice_field` (a Literal field), the backend is also asked for token log-probabilities,
        and the result's `choice_scores` holds the log-probability of each allowed value at that
        field's first token (None where the backend gives none): what calibration needs.
        """
        from langchain_core.messages import AIMessage, HumanMessage

        conversation = list(messages)
        error = ""
        bind = self._bind(choice_field)
        attempts = attempts or self.max_attempts
        for attempt in range(1, attempts + 1):
            sampled = {"temperature": RETRY_TEMPERATURE} if attempt > 1 else {}
            reply = first_reply if attempt == 1 and first_reply is not None else \
                self._invoke(conversation, schema, **bind, **sampled)
            result, answer, error = self._parse(reply, schema, step, attempt)
            if result is not None:
                if choice_field:
                    options = typing.get_args(schema.model_fields[choice_field].annotation)
                    object.__setattr__(result, "choice_scores", choice_logprobs(reply, choice_field, options))
                return result
            conversation += [AIMessage(content=answer or "(empty)"),
                             HumanMessage(content=f"That answer is not valid: {error}. Reply again with only "
                                                  f"a JSON object that matches the {schema.__name__} schema.")]
        raise ModelError(f"the model gave no valid {schema.__name__} for {step or 'a decision'} after {attempts} "
                         f"attempts; last error: {error}.", answers=tuple(m.content for m in conversation[len(messages)::2]))

    def decide_many(self, requests: Sequence[Sequence], schema: type[T], step: str = "",
                    return_exceptions: bool = False, choice_field: str | None = None) -> list[T | Exception]:
        """Many independent decisions, sent `parallel` at a time (or in one engine call where the backend
        batches natively); results in request order."""
        first: list = [None] * len(requests)
        bind = self._bind(choice_field)
        generate_many = getattr(self.chat, "generate_many", None)
        if self.executor is not None and self.executor.can_generate(self.info.get("provider", "")):
            generate_many = lambda reqs, fmt: self.executor.generate_many(reqs, fmt, **bind)  # noqa: E731
        if generate_many is not None and len(requests) > 1:
            # Batched generation goes through the journal too: recorded answers are replayed, new ones recorded.
            keys = [self._journal_key(list(m), schema, bind) for m in requests]
            first = [self._replayed(key) for key in keys]
            todo = [i for i, reply in enumerate(first) if reply is None]
            todo = todo[:self.reserve(len(todo))]  # those past the budget fail in `decide`, as BudgetSpent
            if todo:
                started = time.perf_counter()
                replies = generate_many([list(requests[i]) for i in todo], response_format(schema))
                elapsed = (time.perf_counter() - started) / len(todo)
                for i, reply in zip(todo, replies):
                    first[i] = reply
                    meta = getattr(reply, "usage_metadata", None) or {}
                    self._sent(meta.get("input_tokens", 0), meta.get("output_tokens", 0), elapsed)
                    if keys[i] is not None:
                        self.journal.record(keys[i], reply_record(reply))

        def one(i):
            try:
                return self.decide(requests[i], schema, step, first_reply=first[i], choice_field=choice_field)
            except Exception as e:
                if return_exceptions and not isinstance(e, KeyboardInterrupt):
                    return e
                raise

        workers = 1 if generate_many is not None else self.parallel
        if workers == 1 or len(requests) <= 1:
            return [one(i) for i in range(len(requests))]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, range(len(requests))))

    def _log(self, step: str, think: str, answer: str, attempt: int, error: str | None) -> None:
        with self._trace_lock:
            self.trace.append({"step": step, "attempt": attempt, "think": redact(think[:4000]),
                               "answer": redact(answer[:4000]), "error": error and redact(error)})


def reply_record(reply) -> dict:
    meta = getattr(reply, "usage_metadata", None) or {}
    return {"content": reply.content, "additional_kwargs": dict(reply.additional_kwargs or {}),
            "logprobs": (getattr(reply, "response_metadata", None) or {}).get("logprobs"),
            "input_tokens": meta.get("input_tokens", 0), "output_tokens": meta.get("output_tokens", 0)}


def reply_from_record(record: dict, replayed: bool = True):
    from langchain_core.messages import AIMessage

    return AIMessage(content=record["content"], additional_kwargs=record.get("additional_kwargs") or {},
                     response_metadata={"logprobs": record.get("logprobs"), "replayed": replayed},
                     usage_metadata={"input_tokens": record.get("input_tokens", 0),
                                     "output_tokens": record.get("output_tokens", 0),
                                     "total_tokens": record.get("input_tokens", 0) + record.get("output_tokens", 0)})


LOGPROB_PROVIDERS = {"llamacpp", "openai"}
RETRY_TEMPERATURE = 0.7
MAX_CONSECUTIVE_FAILURES = 3


def choice_logprobs(reply, field: str, options: Sequence[str]) -> dict[str, float] | None:
    """Log-probabilities of each option at the first token of `field`'s string value.

    Read from the top log-probabilities the backend returned for that position; an option whose first
    token is not among them gets the smallest value seen, less 2 (it was at most that likely).
    """
    logprobs = (getattr(reply, "response_metadata", None) or {}).get("logprobs") or {}
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not tokens:
        return None
    key = re.compile(r'"' + re.escape(field) + r'"\s*:\s*"$')
    text = ""
    for tok in tokens:
        if key.search(text):
            scores: dict[str, float] = {}
            for alt in tok.get("top_logprobs") or []:
                piece = alt.get("token", "")
                if not piece.strip():
                    continue
                for option in options:
                    if option not in scores and option.startswith(piece):
                        scores[option] = float(alt["logprob"])
            if not scores:
                return None
            floor = min(scores.values()) - 2.0
            return {o: scores.get(o, floor) for o in options}
        text += tok.get("token", "")
    return None


def _short_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        parts = []
        for err in e.errors()[:3]:
            where = ".".join(str(p) for p in err["loc"]) or "value"
            parts.append(f"{where}: {error_message(err)}")
        return "; ".join(parts)
    return str(e).splitlines()[0][:300]

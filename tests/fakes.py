"""A scripted chat model for hermetic tests of the agent logic.

LangChain's own fake chat models refuse `bind_tools`/`with_structured_output`; this one accepts any
bound keyword (e.g. `response_format`), records every call, and answers from a script: a list of
strings, or a function of (messages, kwargs) that returns a string or raises.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from clusteragent.evals.fault_server import FakeOpenAIServer, schema_instance  # noqa: F401 (used by tests)


def request_schema(kwargs: dict) -> tuple[str, dict]:
    """(name, JSON schema) of the structured answer a request asks for: what a scripted model keys on,
    so that a changed prompt wording breaks no test far away."""
    spec = (kwargs.get("response_format") or {}).get("json_schema", {})
    return spec.get("name", ""), spec.get("schema", {})


def choices(kwargs: dict, field: str) -> list:
    """The values a request's schema allows for one field (a Literal's enum)."""
    _, schema = request_schema(kwargs)
    prop = schema.get("properties", {}).get(field, {})
    if "items" in prop:
        prop = prop["items"]
    if "$ref" in prop:
        prop = schema["$defs"][prop["$ref"].split("/")[-1]]
    return prop.get("enum", [])


def is_retry(messages: list) -> bool:
    """True when the request re-asks after a refused answer (the conversation has grown past system + user)."""
    return len(messages) > 2


def delimited_texts(content: str) -> list[str]:
    """The documents a prompt carries inside <text ...>...</text> delimiters, in order."""
    import re

    return re.findall(r"<text(?: [^>]*)?>(.*?)</text>", content, re.S)


class ScriptedChatModel(BaseChatModel):
    script: Any  # list[str] consumed in order, or Callable[[list, dict], str]
    provider_name: str = "scripted"
    parallel: int = 1
    _calls: list = PrivateAttr(default_factory=list)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[dict]:
        return self._calls

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        with self._lock:
            self._calls.append({"messages": list(messages), "kwargs": kwargs})
            if callable(self.script):
                text = self.script(list(messages), kwargs)
            else:
                if not self.script:
                    raise AssertionError("the scripted model ran out of answers")
                text = self.script.pop(0)
        if isinstance(text, Exception):
            raise text
        words = sum(len(str(m.content).split()) for m in messages)
        usage = {"input_tokens": words, "output_tokens": len(text.split()), "total_tokens": words + len(text.split())}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])



"""A scripted chat model for hermetic tests of the agent logic.

LangChain's own fake chat models refuse `bind_tools`/`with_structured_output`; this one accepts any
bound keyword (e.g. `response_format`), records every call, and answers from a script: a list of
strings, or a function of (messages, kwargs) that returns a string or raises.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr


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

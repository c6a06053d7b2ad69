"""vLLM's in-process engine as a LangChain chat model, for batched generation on a GPU.

vLLM pins its own torch, numpy and transformers, so it lives in a separate environment (see README);
it is imported only when a `vllm:` model is loaded. Structured output uses vLLM's guided decoding under
the JSON schema passed as `response_format`, the same argument the OpenAI-compatible backends take.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from clusteragent.errors import ModelError

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _structured_params(schema: dict) -> dict:
    """SamplingParams keyword for JSON-schema decoding, across vLLM versions."""
    from vllm import sampling_params as sp

    if hasattr(sp, "StructuredOutputsParams"):
        return {"structured_outputs": sp.StructuredOutputsParams(json=schema)}
    return {"guided_decoding": sp.GuidedDecodingParams(json=schema)}


class VLLMChatModel(BaseChatModel):
    """A chat model on `vllm.LLM`. `batch()` sends every conversation to the engine in one call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = Field(description="Hugging Face name or local path of the model.")
    temperature: float = 0.0
    seed: int = 0
    max_tokens: int = 1024
    engine_options: dict = Field(default_factory=dict, description="Keyword arguments for vllm.LLM.")
    provider_name: str = "vllm"
    parallel: int = 64
    _llm: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "vllm"

    def _engine(self):
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError:
                raise ModelError("the vllm backend needs vLLM in this environment: `pip install vllm` "
                                 "(in its own environment; it pins its own torch).") from None
            self._llm = LLM(model=self.model, seed=self.seed, **self.engine_options)
        return self._llm

    def _sampling(self, response_format: dict | None, stop: list[str] | None, temperature: float | None = None):
        from vllm import SamplingParams

        extra = {}
        if response_format and response_format.get("type") == "json_schema":
            extra = _structured_params(response_format["json_schema"]["schema"])
        temperature = self.temperature if temperature is None else temperature
        return SamplingParams(temperature=temperature, seed=self.seed, max_tokens=self.max_tokens,
                              stop=stop, **extra)

    @staticmethod
    def _to_openai(messages: list[BaseMessage]) -> list[dict]:
        return [{"role": _ROLES.get(m.type, "user"), "content": m.content} for m in messages]

    def _results(self, conversations: list[list[BaseMessage]], stop, response_format,
                 temperature: float | None = None) -> list[ChatResult]:
        outputs = self._engine().chat([self._to_openai(c) for c in conversations],
                                      self._sampling(response_format, stop, temperature), use_tqdm=False)
        results = []
        for out in outputs:
            completion = out.outputs[0]
            usage = {"input_tokens": len(out.prompt_token_ids or []), "output_tokens": len(completion.token_ids),
                     "total_tokens": len(out.prompt_token_ids or []) + len(completion.token_ids)}
            message = AIMessage(content=completion.text, usage_metadata=usage)
            results.append(ChatResult(generations=[ChatGeneration(message=message)]))
        return results

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        return self._results([messages], stop, kwargs.get("response_format"), kwargs.get("temperature"))[0]

    def generate_many(self, conversations: list[list[BaseMessage]], response_format: dict | None = None) -> list[AIMessage]:
        """All conversations in one engine call: the throughput path on a GPU."""
        return [r.generations[0].message for r in self._results(conversations, None, response_format)]

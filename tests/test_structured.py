import json
from typing import Literal

import httpx
import openai
import pytest
from fakes import ScriptedChatModel
from pydantic import BaseModel, Field

from clusteragent.errors import ModelError
from clusteragent.structured import (
    RETRY_TEMPERATURE,
    StructuredLLM,
    extract_json,
    output_constraint,
    response_format,
    split_think,
)


class Pick(BaseModel):
    label: Literal["billing", "shipping"] = Field(description="the chosen cluster")
    confidence: float = Field(ge=0, le=1, description="how sure")


MESSAGES = [("user", "which cluster?")]


def test_valid_answer_parses_and_schema_is_sent_as_response_format():
    chat = ScriptedChatModel(script=['{"label": "billing", "confidence": 0.9}'])
    llm = StructuredLLM(chat)
    assert llm.decide(MESSAGES, Pick) == Pick(label="billing", confidence=0.9)
    fmt = chat.calls[0]["kwargs"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["properties"]["label"]["enum"] == ["billing", "shipping"]
    assert llm.usage.calls == 1 and llm.usage.completion_tokens > 0


def test_llamacpp_gets_a_grammar_for_the_schema_with_no_free_whitespace():
    pytest.importorskip("xllamacpp")
    grammar = output_constraint(Pick, "llamacpp")["extra_body"]["grammar"]
    spec = json.loads(grammar.split("%json", 1)[1])
    assert spec["properties"]["label"]["enum"] == ["billing", "shipping"]
    assert spec["x-guidance"]["whitespace_flexible"] is False
    assert spec["additionalProperties"] is False  # no fields of the model's own
    assert output_constraint(Pick, "openai") == {"response_format": response_format(Pick)}


def test_a_cluster_description_is_held_to_open_as_a_rule_about_texts():
    pytest.importorskip("xllamacpp")
    from clusteragent.schemas import distinct_spec_schema

    grammar = output_constraint(distinct_spec_schema(("Travel",), second_choice=True), "llamacpp")["extra_body"]["grammar"]
    spec = json.loads(grammar.split("%json", 1)[1])
    from clusteragent.schemas import DESCRIPTION_MAX

    description = spec["properties"]["description"]
    assert description["pattern"] == f"^Texts .{{0,{DESCRIPTION_MAX - 6}}}$"  # "Customer wants ..." is no rule
    # The pattern holds the length: beside one, xgrammar drops or refuses it.
    assert "maxLength" not in description and "minLength" not in description


def test_invalid_answer_is_retried_with_the_validation_error():
    chat = ScriptedChatModel(script=['{"label": "refunds", "confidence": 0.9}', '{"label": "shipping", "confidence": 0.4}'])
    llm = StructuredLLM(chat)
    assert llm.decide(MESSAGES, Pick, step="label").label == "shipping"
    retry_prompt = chat.calls[1]["messages"][-1].content
    assert "not valid" in retry_prompt and "label" in retry_prompt
    assert [t["error"] is None for t in llm.trace] == [False, True]
    # The first answer at the model's own temperature (0), the retry sampled: at 0 it came back the same.
    assert "temperature" not in chat.calls[0]["kwargs"] and chat.calls[1]["kwargs"]["temperature"] == RETRY_TEMPERATURE


def test_a_refusal_reaches_the_model_without_pydantic_s_value_error_prefix():
    """Refused a name with "name: Value error, 'Cooperation' is already the name of another group", the model
    named the group "Value error"."""
    from clusteragent.schemas import distinct_spec_schema

    answer = json.dumps({"name": "Cooperation", "description": "Texts about working together."})
    chat = ScriptedChatModel(script=[answer, answer])
    with pytest.raises(ModelError):
        StructuredLLM(chat, max_attempts=2).decide(MESSAGES, distinct_spec_schema(("Cooperation",)), step="name")
    retry_prompt = chat.calls[1]["messages"][-1].content
    assert "name: 'Cooperation' is already the name of another group" in retry_prompt
    assert "Value error" not in retry_prompt


def test_gives_up_after_max_attempts_with_a_clear_error():
    chat = ScriptedChatModel(script=["not json", "", '{"label": 3}'])
    with pytest.raises(ModelError, match=r"no valid Pick for label after 3 attempts"):
        StructuredLLM(chat, max_attempts=3).decide(MESSAGES, Pick, step="label")
    assert len(chat.calls) == 3


def test_think_block_is_kept_as_trace_and_not_parsed():
    answer = '<think>{"label": "shipping"} looks wrong; it is about money</think>\n{"label": "billing", "confidence": 1}'
    llm = StructuredLLM(ScriptedChatModel(script=[answer]))
    assert llm.decide(MESSAGES, Pick).label == "billing"
    assert "looks wrong" in llm.trace[0]["think"] and "<think>" not in llm.trace[0]["answer"]


@pytest.mark.parametrize("text,think,answer", [
    ("<think>a</think>b", "a", "b"),
    ("reasoning here</think>{}", "reasoning here", "{}"),
    ("<think>unfinished", "unfinished", ""),
    ('{"x": 1}', "", '{"x": 1}'),
])
def test_split_think(text, think, answer):
    assert split_think(text) == (think, answer)


def test_extract_json_tolerates_fences_and_prose():
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Here it is: {"a": {"b": 2}} done') == {"a": {"b": 2}}
    with pytest.raises(json.JSONDecodeError):
        extract_json("no json at all")


def test_a_brace_in_the_answer_text_is_fine():
    chat = ScriptedChatModel(script=['{"label": "billing", "confidence": 0.5}'])
    assert StructuredLLM(chat).decide([("user", "text with {braces} and {{more}}")], Pick).label == "billing"


def test_server_down_becomes_a_model_error_naming_the_server():
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    chat = ScriptedChatModel(script=lambda m, k: openai.APIConnectionError(request=request))
    llm = StructuredLLM(chat)
    llm.info["base_url"] = "http://127.0.0.1:9/v1"
    with pytest.raises(ModelError, match=r"server at http://127.0.0.1:9/v1 did not answer"):
        llm.decide(MESSAGES, Pick)
    assert llm.usage.failed_calls == 1


def test_decide_many_keeps_order_and_can_return_exceptions():
    def script(messages, kwargs):
        q = messages[-1].content
        return "garbage" if q == "bad" else json.dumps({"label": q, "confidence": 1})

    chat = ScriptedChatModel(script=script, parallel=3)
    llm = StructuredLLM(chat, max_attempts=2)
    out = llm.decide_many([[("user", q)] for q in ["billing", "bad", "shipping", "billing"]], Pick, return_exceptions=True)
    assert [o.label if isinstance(o, Pick) else "error" for o in out] == ["billing", "error", "shipping", "billing"]
    assert isinstance(out[1], ModelError)


def test_batching_backend_gets_one_engine_call_and_retries_only_failures():
    class Batching(ScriptedChatModel):
        def generate_many(self, conversations, response_format):
            self.calls.append({"batch": len(conversations)})
            from langchain_core.messages import AIMessage

            return [AIMessage(content="oops" if i == 1 else '{"label": "billing", "confidence": 1}')
                    for i in range(len(conversations))]

    chat = Batching(script=['{"label": "shipping", "confidence": 1}'])
    out = StructuredLLM(chat).decide_many([[("user", "q")]] * 3, Pick)
    assert [o.label for o in out] == ["billing", "shipping", "billing"]
    assert chat.calls[0] == {"batch": 3} and len(chat.calls) == 2



def test_batched_answers_are_recorded_and_replayed_like_single_ones(tmp_path):
    from langchain_core.messages import AIMessage

    from clusteragent.call_journal import CallJournal

    class Batching(ScriptedChatModel):
        def generate_many(self, conversations, response_format):
            self.calls.append({"batch": [c[-1][1] for c in conversations]})
            return [AIMessage(content=json.dumps({"label": c[-1][1].split()[0], "confidence": 1})) for c in conversations]

    questions = [[("user", q)] for q in ("billing", "shipping", "billing again")]
    first = Batching(script=[])
    answers = StructuredLLM(first, journal=CallJournal(tmp_path / "answers.jsonl")).decide_many(questions[:2], Pick)
    assert [a.label for a in answers] == ["billing", "shipping"]
    again = Batching(script=[])  # a resumed run: the two recorded answers come back, only the new one is asked
    llm = StructuredLLM(again, journal=CallJournal(tmp_path / "answers.jsonl"))
    assert [a.label for a in llm.decide_many(questions, Pick)] == ["billing", "shipping", "billing"]
    assert again.calls == [{"batch": ["billing again"]}] and llm.usage.calls == 3

def _reply_with_logprobs(tokens):
    from langchain_core.messages import AIMessage

    return AIMessage(content="".join(t for t, _ in tokens), response_metadata={"logprobs": {"content": [
        {"token": t, "logprob": -0.1, "top_logprobs": [{"token": a, "logprob": lp} for a, lp in alts]} for t, alts in tokens]}})


def test_choice_logprobs_reads_the_value_position_and_floors_missing_options():
    from clusteragent.structured import choice_logprobs

    reply = _reply_with_logprobs([("{", []), ('"', []), ("cluster", []), ('":', []), (' "', []),
                                  ("Ger", [("Ger", -0.5), ("English", -1.0), ("Fr", -3.0)]), ('man"', []), ("}", [])])
    scores = choice_logprobs(reply, "cluster", ("English", "German", "French", "Spanish"))
    assert scores == {"English": -1.0, "German": -0.5, "French": -3.0, "Spanish": -5.0}
    assert choice_logprobs(_reply_with_logprobs([("{}", [])]), "cluster", ("a",)) is None


def test_logprobs_are_requested_only_from_backends_that_give_them():
    chat = ScriptedChatModel(script=['{"label": "billing", "confidence": 0.9}'])
    result = StructuredLLM(chat).decide(MESSAGES, Pick, choice_field="label")
    assert "logprobs" not in chat.calls[0]["kwargs"] and result.choice_scores is None


@pytest.mark.parametrize("written,kept", [("coin_flip", "Coin flip"), ("phoneLocation", "Phone location"),
                                          ("Lost luggage", "Lost luggage"), ("iPhone", "iPhone"), ("C++", "C++"),
                                          ("web-dev", "Web dev"), ("lost-card-reporting", "Lost card reporting"),
                                          ("e-mail", "E-mail"), ("Wi-Fi", "Wi-Fi"),
                                          ("Self-care tips", "Self-care tips")])
def test_a_name_the_model_writes_as_an_identifier_becomes_words(written, kept):
    from clusteragent.schemas import ClusterSpec

    assert ClusterSpec(name=written, description="Texts of this kind.").name == kept


def test_a_listed_name_written_in_another_case_is_read_as_the_listed_one():
    from pydantic import ValidationError, create_model

    from clusteragent.choices import one_of

    Choice = create_model("Choice", cluster=(one_of(("Lost luggage", "Refunds", "refunds")), ...))
    assert Choice.model_json_schema()["properties"]["cluster"]["enum"] == ["Lost luggage", "Refunds", "refunds"]
    assert Choice(cluster="lost  LUGGAGE ").cluster == "Lost luggage"
    assert Choice(cluster="Refunds").cluster == "Refunds" and Choice(cluster="refunds").cluster == "refunds"
    with pytest.raises(ValidationError):
        Choice(cluster="Delays")

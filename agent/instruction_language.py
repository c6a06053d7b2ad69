"""An instruction or a chat message written in another language than English, read in English where English
is what reads it.

The router (facets.py) reads an instruction by its likeness to English example instructions under an
English sentence embedder; written in German, "Gruppiere die Nachrichten nach Thema" (by topic) read most
like an instruction by language, and "Agrupa estos textos por idioma" (by language) like one by sentiment.
A chat turn checks the model's reading of a message against its English words ("undo", "how many"): "Combien
de textes y a-t-il dans Sports ?" was answered as a search. The chat model reads those languages: where the language
identifier reads the text as another language, the model writes it in English, and the router and the
chat's checks read that. Everything else reads the text as written (a cluster's name, a new name given).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from clusteragent.errors import ModelError
from clusteragent.prompts import load_prompt

# The identifier's probability above which an instruction is read as written in another language. On the
# router's 549 English example and benchmark instructions English was the likeliest language every time
# (at 0.59 at the least); single words can be read as another language at low probability ("Sentiment":
# Italian, 0.17).
OTHER_LANGUAGE = 0.5


class InEnglish(BaseModel):
    """An instruction for clustering, or a chat message about clusters, written in English."""

    instruction: str = Field(min_length=2, max_length=400, description="the message in English")


def written_in(instruction: str, unsure: bool = False) -> str | None:
    """The language code the identifier reads `instruction` as written in ("de"), or None for English or where
    it is unsure; with `unsure`, None only where it reads English at OTHER_LANGUAGE or more, and "und" where
    it is unsure (a short message: "Annule la dernière modification." reads English 0.31, French 0.25)."""
    from clusteragent.tools.features import likeliest_languages

    guess = (likeliest_languages([instruction], 1)[0] or [{"lang": "und", "score": 0.0}])[0]
    if guess["score"] >= OTHER_LANGUAGE:
        return None if guess["lang"] == "en" else guess["lang"]
    return "und" if unsure else None


def in_english(llm, instruction: str, attempts: int | None = None, unsure: bool = False) -> tuple[str, dict]:
    """The instruction (or chat message) in English, and what the trace keeps of how it was read:
    `instruction` itself where it is English (with `unsure`, only where the identifier is sure it is),
    else the model's English for it ({"written_in": "de", "routed_as": ...}); where the model gives none
    within `attempts`, `instruction` as written, and the trace says so."""
    language = written_in(instruction, unsure)
    if language is None:
        return instruction, {}
    try:
        answer = llm.decide(load_prompt("in_english").messages(instruction=instruction), InEnglish,
                            step="in_english", attempts=attempts)
    except ModelError as e:
        return instruction, {"written_in": language, "routed_as": instruction, "no_english": str(e)[:200]}
    return answer.instruction, {"written_in": language, "routed_as": answer.instruction}

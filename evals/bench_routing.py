"""Routing: the view the agent takes for an instruction against the view that follows the facet.

    python -m clusteragent.evals.bench_routing [--only dev|paraphrase|fresh|nouns|later|languages] [--model] [--labelled]

The instructions are the dev suite's wordings and five sets of paraphrases written for this benchmark
(not by the agent, and kept out of everything the router learns from; each set after the first was written
before the change it was written to measure), each with the view that follows its facet. Prints one JSON line per
instruction: the view the router takes (agent/facets.py; None: the model's reading or labels), the kind
of facet it read the instruction as and how alike, the best kind of another path and whether the route is
doubtful (it leads that kind by less than facets.DOUBTFUL_LEAD), and the route with the instruction's own
corpus left out of the router's evidence (a kind only that corpus carries is then unknown to it); then a
summary, with how many routes taken right and wrong were doubtful. An instruction the language identifier
reads as written in another language is routed in the chat model's English for it, as the agent routes it
(the set "languages"; its lines add `written_in` and `routed_as`).

`--model` also runs the agent's first step (understand: the chat model reads the instruction with a
300-text sample) to print the model's own yes/no on "subject matter?" beside the route.

`--labelled` asks whether routing could rest on the model's labels instead: the labels path's first
labelled sample is taken as well (the model's own taxonomy, one text per call) and, for each view, how
closely the model's labels of that sample follow it, beside the gold labels of the same texts: the gap
between same-label and different-label cosine similarities as a z-score against 2,000 shuffles of the
labels (with its p-value), and the leave-one-out nearest-neighbour agreement above chance (Cohen's
kappa).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

# The view that follows each facet (None where only labels can): for dev-suite tasks, which keep the
# suite's own wording, and for paraphrases (corpus, facet, instruction, view).
DEV_VIEWS = {
    "agnews_test:topic": "meaning", "arxiv_titles:group": "meaning", "banking77:intent": "meaning",
    "clinc150:domain": "meaning", "clinc150:intent": "meaning", "dailydialog_utterances:dialog_act": None,
    "dailydialog_utterances:emotion": None, "financial_phrasebank:sentiment": None,
    "goalex_syn:language": "characters", "goalex_syn:style": "layout", "goalex_syn:topic": "meaning",
    "goemotions:ekman": None, "massive_en:scenario": "meaning", "stackexchange_titles:site": "meaning",
    "stackoverflow_stc:tag": "meaning", "twenty_newsgroups:newsgroup": "meaning", "fewrel:relation": "meaning",
}
PARAPHRASES = [
    ("banking77", "intent", "Group these customer messages by what the customer wants.", "meaning"),
    ("clinc150", "intent", "Sort the requests by the kind of request.", "meaning"),
    ("massive_en", "intent", "What is the user trying to get done? Group the commands that way.", "meaning"),
    ("goemotions", "ekman", "Group the comments by how the writer feels.", None),
    ("financial_phrasebank", "sentiment", "Put the sentences into groups: good news, bad news, and neither.", None),
    ("goemotions", "sentiment", "Separate the positive comments from the negative ones.", None),
    ("dailydialog_utterances", "emotion", "Which mood is each line said in? Group them by it.", None),
    ("goalex_syn", "language", "Group the texts so that each group is in one language.", "characters"),
    ("goalex_syn", "style", "Group the texts by how they are written (a list, a dialogue, a poem, a letter...).",
     "layout"),
    ("stackoverflow_stc", "tag", "Group the questions by the programming language they ask about.", "meaning"),
    ("agnews_test", "topic", "What are these articles about? Make groups of them.", "meaning"),
    ("searchsnippets", "domain", "Organise the snippets into subject areas.", "meaning"),
    ("reddit_titles", "subreddit", "Which community was each title posted in? Cluster accordingly.", "meaning"),
]

# A second set, written before routing learned from the labelled corpora and kept out of everything it
# learns from: the same question asked in words neither the router's examples nor the first set use.
FRESH = [
    ("banking77", "intent", "Cluster the messages by the problem or request each customer raises.", "meaning"),
    ("clinc150", "domain", "Which part of daily life does each query concern? Group them so.", "meaning"),
    ("massive_en", "scenario", "Group the commands by the kind of thing the assistant is asked to help with.",
     "meaning"),
    ("arxiv_titles", "group", "Split the titles into scientific disciplines.", "meaning"),
    ("twenty_newsgroups", "newsgroup", "Group the posts by the discussion they would belong to.", "meaning"),
    ("stackexchange_titles", "site", "Arrange the questions by the community they were asked in.", "meaning"),
    ("fewrel", "relation", "Group the sentences by how the two named things relate.", "meaning"),
    ("goalex_syn", "topic", "Group the documents by what they discuss.", "meaning"),
    ("financial_phrasebank", "sentiment", "Is each sentence upbeat, downbeat or flat? Cluster on that.", None),
    ("goemotions", "ekman", "Group the comments by the feeling behind them: anger, joy, fear and so on.", None),
    ("dailydialog_utterances", "dialog_act",
     "Group the turns by what the speaker is doing: asking, telling, suggesting or agreeing.", None),
    ("dailydialog_utterances", "emotion", "Cluster the lines by the speaker's emotional state.", None),
    ("goalex_syn", "language", "Separate the documents by the tongue they are in.", "characters"),
    ("goalex_syn", "style", "Group the texts by their shape on the page: lists, letters, poems, dialogues.", "layout"),
]

# A third set, written before the router learned to look past them: instructions that name the kind of
# text they sort ("these financial news sentences"), as users write them. The noun is not the facet and
# must not carry the route ("news" is not the newsgroup).
NOUNS = [
    ("financial_phrasebank", "sentiment",
     "Group these financial news sentences by whether they are good or bad news for the company.", None),
    ("financial_phrasebank", "sentiment", "Group the news sentences by their tone.", None),
    ("goemotions", "ekman", "Cluster these Reddit comments by the emotion the commenter shows.", None),
    ("goemotions", "sentiment", "Sort the Reddit comments into positive, negative and neutral ones.", None),
    ("goemotions", "sentiment", "Group these customer reviews by how happy or unhappy the customer is.", None),
    ("dailydialog_utterances", "emotion", "Group the chat messages by the mood of the person writing.", None),
    ("dailydialog_utterances", "dialog_act", "Group these dialogue turns by whether the speaker asks a question, "
     "gives information, makes a suggestion or commits to something.", None),
    ("banking77", "intent", "Group the bank support tickets by what the customer needs help with.", "meaning"),
    ("clinc150", "domain", "Group these voice assistant queries by the area of life they concern.", "meaning"),
    ("massive_en", "scenario", "Cluster the smart speaker commands by scenario.", "meaning"),
    ("agnews_test", "topic", "Group these news headlines by topic.", "meaning"),
    ("twenty_newsgroups", "newsgroup", "Which forum was each of these email posts sent to? Group them.", "meaning"),
    ("arxiv_titles", "group", "Group the paper titles by field of science.", "meaning"),
    ("stackoverflow_stc", "tag", "Group these programming questions by the technology they are about.", "meaning"),
    ("goalex_syn", "language", "Group these multilingual documents by language.", "characters"),
    ("goalex_syn", "style", "Group these writings by their form: poems, letters, dialogues and lists.", "layout"),
    ("fewrel", "relation", "Group these Wikipedia sentences by the relation between the two entities.", "meaning"),
    ("reddit_titles", "subreddit", "Group these Reddit post titles by the subreddit they came from.", "meaning"),
]

# A fourth set, written after the router, before the doubtful lead (facets.DOUBTFUL_LEAD) was chosen: more
# instructions that name their texts, some with a word that pulls to another kind ("news" in a sentiment one).
LATER = [
    ("financial_phrasebank", "sentiment",
     "Sort these press-release sentences by how the market would react: up, down or no change.", None),
    ("financial_phrasebank", "sentiment", "Group these earnings headlines by whether they report good or bad results.",
     None),
    ("financial_phrasebank", "sentiment", "Group the news by whether it is positive or negative.", None),
    ("goemotions", "ekman", "Group these forum replies by the feeling the author expresses.", None),
    ("goemotions", "sentiment", "Split the product reviews into happy and unhappy customers.", None),
    ("dailydialog_utterances", "dialog_act",
     "Classify each chat line by whether it is a question, a statement, a suggestion or a promise.", None),
    ("dailydialog_utterances", "emotion", "Group these movie subtitles by the emotion in the speaker's voice.", None),
    ("banking77", "intent", "Group these app store complaints by what the user wants fixed.", "meaning"),
    ("clinc150", "intent", "Group these chatbot requests by the action the user asks for.", "meaning"),
    ("agnews_test", "topic", "Group these newspaper articles by the section they would run in.", "meaning"),
    ("twenty_newsgroups", "newsgroup", "Group these mailing-list messages by the list they were sent to.", "meaning"),
    ("stackexchange_titles", "site", "Group these Q&A titles by the website they were asked on.", "meaning"),
    ("arxiv_titles", "group", "Group these research paper titles by scientific field.", "meaning"),
    ("goalex_syn", "language", "Group these news snippets by the language they are written in.", "characters"),
    ("goalex_syn", "style", "Group these news texts by their format: list, letter, poem or dialogue.", "layout"),
    ("reddit_titles", "subreddit", "Group these news headlines posted on Reddit by the subreddit.", "meaning"),
]

# A fifth set: instructions written in other languages than English (the router reads them in the model's
# English: instruction_language.in_english), the first nine written before that was built.
OTHER_LANGUAGES = [
    ("goalex_syn", "language", "Gruppiere diese Texte nach Sprache.", "characters"),
    ("goalex_syn", "language", "Regroupe ces textes par langue.", "characters"),
    ("goalex_syn", "language", "Agrupa estos textos por idioma.", "characters"),
    ("agnews_test", "topic", "Gruppiere die Nachrichten nach Thema.", "meaning"),
    ("goalex_syn", "topic", "按主题对这些评论进行分组", "meaning"),
    ("agnews_test", "topic", "Raggruppa questi messaggi per argomento.", "meaning"),
    ("financial_phrasebank", "sentiment", "Agrupa las reseñas según el sentimiento del cliente.", None),
    ("banking77", "intent", "Gruppiere die Anfragen danach, was der Kunde möchte.", "meaning"),
    ("goemotions", "ekman", "Regroupe les tweets selon l'émotion exprimée.", None),
    ("dailydialog_utterances", "emotion", "Agrupe estas falas pela emoção de quem fala.", None),
    ("stackexchange_titles", "site", "Groepeer deze vragen naar de website waarop ze gesteld zijn.", "meaning"),
    ("goalex_syn", "style", "Сгруппируйте эти тексты по форме: стихи, письма, диалоги и списки.", "layout"),
    ("clinc150", "domain", "これらの質問を生活の分野ごとにグループ化してください。", "meaning"),
]

VIEWS = ("meaning", "characters", "layout")
SHUFFLES = 2000


def _gap(similarity: np.ndarray, labels: np.ndarray) -> float:
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    different = labels[:, None] != labels[None, :]
    if not same.any() or not different.any():
        return 0.0
    return float(similarity[same].mean() - similarity[different].mean())


def follows(vectors: np.ndarray, labels: Sequence, seed: int = 0) -> dict:
    """How closely `labels` follow the rows of `vectors` (one per labelled text): the same-minus-different
    cosine gap as a z-score against shuffled labels, its one-sided p-value, and the leave-one-out
    nearest-neighbour agreement as Cohen's kappa (0: chance, 1: every nearest neighbour shares the label)."""
    codes = np.unique(np.asarray([str(v) for v in labels]), return_inverse=True)[1]
    centred = vectors - vectors.mean(axis=0)
    unit = centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-9)
    similarity = unit @ unit.T
    rng = np.random.default_rng(seed)
    observed = _gap(similarity, codes)
    null = np.array([_gap(similarity, rng.permutation(codes)) for _ in range(SHUFFLES)])
    nearest = np.where(np.eye(len(codes), dtype=bool), -np.inf, similarity).argmax(axis=1)
    agreement = float((codes[nearest] == codes).mean())
    chance = float(((np.bincount(codes) / len(codes)) ** 2).sum())
    return {"z": round((observed - null.mean()) / max(null.std(), 1e-12), 2),
            "p": round((1 + int((null >= observed).sum())) / (SHUFFLES + 1), 4),
            "kappa": round((agreement - chance) / max(1 - chance, 1e-9), 3)}


def labelled_evidence(ctx, state: dict, gold: list[str]) -> dict:
    """Label the labels path's first sample and say, per view, how the model's and the gold labels follow it."""
    from langgraph.runtime import Runtime

    from clusteragent.graph import label
    from clusteragent.views import view

    runtime = Runtime(context=ctx)
    state = {**state, **label(state, runtime)}
    rows = np.array([int(r) for r in state["labels"]], dtype=np.int64)
    model = [state["labels"][r] for r in state["labels"]]
    truth = [gold[r] for r in rows]
    found = {"labelled": len(rows), "model_values": len(set(model)), "gold_values": len(set(truth))}
    for name in VIEWS:
        sample = view(ctx, name)[rows]
        found[name] = {"model": follows(sample, model, ctx.config.seed), "gold": follows(sample, truth, ctx.config.seed)}
    return found


def model_reading(agent, chat, corpus: str, facet: str, instruction: str, options) -> dict:
    """The understand step on a sample of the corpus: the model's yes/no on subject matter, and with
    --labelled how its labels of the first sample follow each view."""
    from langgraph.runtime import Runtime

    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.graph import ingest, understand
    from clusteragent.models import backend_info
    from clusteragent.state import RunContext
    from clusteragent.structured import StructuredLLM
    from clusteragent.tools.corpus import work_texts

    data = load_task(parse_task(f"{corpus}:{facet}:{instruction}"), default_data_dir(), max_docs=options.max_docs,
                     seed=options.seed)
    llm = StructuredLLM(chat, max_calls=agent.config.max_model_calls)
    # The labels path whatever the route, so that its first sample can be labelled (--labelled).
    config = agent.config.resolved_for(backend_info(chat)["provider"]).model_copy(update={"strategy": "labels"})
    ctx = RunContext(texts=work_texts(data.texts), llm=llm, embedder=agent.embedder(), config=config,
                     show_bars=False)
    runtime = Runtime(context=ctx)
    state = {"instruction": instruction}
    for step in (ingest, understand):
        state.update(step(state, runtime))
    found = {"model_about_topic": state["trace"][-1]["model_about_topic"]}
    if options.labelled:
        found["evidence"] = labelled_evidence(ctx, state, data.gold)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-docs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["dev", "paraphrase", "fresh", "nouns", "later", "languages"])
    parser.add_argument("--model", action="store_true", help="also print the chat model's own reading")
    parser.add_argument("--labelled", action="store_true",
                        help="with --model: label the labels path's first sample and print how its labels follow "
                             "each view")
    parser.add_argument("--max-model-calls", type=int, default=40, help="the budget the first sample is drawn from")
    options = parser.parse_args(argv)

    from clusteragent import ClusterAgent
    from clusteragent.evals.tasks import load_suite
    from clusteragent.facets import FacetRouter
    from clusteragent.instruction_language import in_english
    from clusteragent.structured import StructuredLLM

    agent = ClusterAgent(seed=options.seed, progress=False, max_model_calls=options.max_model_calls)
    embedder = agent.embedder()
    chat = agent.chat_model() if options.model or options.labelled or options.only in (None, "languages") else None
    llm = StructuredLLM(chat) if chat is not None else None
    dev = [(t.corpus, t.facet, t.instruction, DEV_VIEWS[t.name]) for t in load_suite("dev") if t.name in DEV_VIEWS]
    sets = {"dev": dev, "paraphrase": PARAPHRASES, "fresh": FRESH, "nouns": NOUNS, "later": LATER,
            "languages": OTHER_LANGUAGES}
    router = FacetRouter(embedder)
    without: dict[str, FacetRouter] = {}
    right: dict[str, list[tuple[bool, bool]]] = {}
    doubtful = {True: 0, False: 0}  # doubtful routes among those taken right and wrong
    for group, rows in sets.items():
        if options.only not in (None, group):
            continue
        for corpus, facet, instruction, expected in rows:
            routed, read_as = in_english(llm, instruction) if llm is not None else (instruction, {})
            route = router.route(routed)
            if corpus not in without:
                without[corpus] = FacetRouter(embedder, exclude=(corpus,))
            held_out = without[corpus].route(routed)
            found = {"task": f"{corpus}:{facet}", "instruction": instruction, "set": group, "expected": expected,
                     "view": route.view, **route.evidence(), **read_as, "right": route.view == expected,
                     "doubtful": route.doubtful,
                     "corpus_left_out": {"view": held_out.view, "kind": held_out.kind,
                                         "right": held_out.view == expected}}
            if read_as:  # beside the route of the instruction as written
                written = router.route(instruction)
                found["as_written"] = {"view": written.view, "kind": written.kind, "right": written.view == expected}
            if chat is not None and (options.model or options.labelled):
                found.update(model_reading(agent, chat, corpus, facet, instruction, options))
            right.setdefault(group, []).append((found["right"], held_out.view == expected))
            doubtful[found["right"]] += route.doubtful
            print(json.dumps(found), flush=True)
    print(json.dumps({"summary": {g: {"right": f"{sum(a for a, _ in r)}/{len(r)}",
                                      "corpus_left_out": f"{sum(b for _, b in r)}/{len(r)}"}
                                  for g, r in right.items()},
                      "doubtful": {"right": f"{doubtful[True]}/{sum(a for r in right.values() for a, _ in r)}",
                                   "wrong": f"{doubtful[False]}/{sum(not a for r in right.values() for a, _ in r)}"}}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

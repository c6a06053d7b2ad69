"""Routing: the view the agent takes for an instruction against the view that follows the facet.

    python -m clusteragent.evals.bench_routing [--max-docs 300] [--seed 0] [--only dev|paraphrase]

The instructions are the dev suite's wordings and paraphrases of them written for this benchmark (not
by the agent, and not tuned on it), each on a sample of a corpus that has the facet. Only the agent's
first step runs (understand: the model reads the instruction with a sample; facets.py routes). Prints
one JSON line per instruction: whether the instruction's words named the kind of facet, the model's
reading (subject matter or not), the view taken (None: the labels path) and whether it is the one
expected; then a summary line.
"""

from __future__ import annotations

import argparse
import json
import sys

# (corpus, facet, instruction, the view that follows the facet: None where only labels can)
DEV = [
    ("agnews_test", "topic", "Cluster the news articles by topic.", "meaning"),
    ("arxiv_titles", "group", "Cluster the paper titles by broad scientific field.", "meaning"),
    ("banking77", "intent", "Cluster the banking queries by the customer's intent.", "meaning"),
    ("clinc150", "domain", "Cluster the assistant queries by the domain of life they are about.", "meaning"),
    ("clinc150", "intent", "Cluster the assistant queries by the user's specific intent.", "meaning"),
    ("dailydialog_utterances", "dialog_act", "Cluster the utterances by dialog act: what the speaker does with "
                                             "the utterance (inform, ask, request, promise).", None),
    ("dailydialog_utterances", "emotion", "Cluster the utterances by the emotion the speaker expresses.", None),
    ("financial_phrasebank", "sentiment", "Cluster the financial sentences by sentiment.", None),
    ("goalex_syn", "language", "Cluster the texts by the language they are written in.", "characters"),
    ("goalex_syn", "style", "Cluster the texts by their writing style (the form they are written in), not by topic "
                            "or language.", "layout"),
    ("goalex_syn", "topic", "Cluster the texts by their topic, whatever language or style they are written in.",
     "meaning"),
    ("goemotions", "ekman", "Cluster the comments by the basic emotion they express.", None),
    ("massive_en", "scenario", "Cluster the assistant commands by scenario: the area of the assistant they address.",
     "meaning"),
    ("stackexchange_titles", "site", "Cluster the question titles by the Stack Exchange site they were asked on.",
     "meaning"),
    ("stackoverflow_stc", "tag", "Cluster the Stack Overflow titles by the technology they are about.", "meaning"),
    ("twenty_newsgroups", "newsgroup", "Cluster the posts by the newsgroup they were posted to.", "meaning"),
    ("fewrel", "relation", "Cluster the sentences by the relation that holds between the two entities they mention.",
     "meaning"),
]
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


def route_one(agent, chat, corpus: str, facet: str, instruction: str, options) -> dict:
    from langgraph.runtime import Runtime

    from clusteragent.evals.tasks import default_data_dir, load_task, parse_task
    from clusteragent.facets import facet_is_topical
    from clusteragent.graph import ingest, understand
    from clusteragent.state import RunContext
    from clusteragent.structured import StructuredLLM
    from clusteragent.tools.corpus import work_texts

    data = load_task(parse_task(f"{corpus}:{facet}:{instruction}"), default_data_dir(), max_docs=options.max_docs,
                     seed=options.seed)
    llm = StructuredLLM(chat, max_calls=agent.config.max_model_calls)
    ctx = RunContext(texts=work_texts(data.texts), llm=llm, embedder=agent.embedder(), config=agent.config,
                     show_bars=False)
    runtime = Runtime(context=ctx)
    state = {"instruction": instruction}
    for step in (ingest, understand):
        state.update(step(state, runtime))
    decided = state["trace"][-1]
    return {"task": f"{corpus}:{facet}", "instruction": instruction, "worded": facet_is_topical(instruction),
            "model_about_topic": decided["model_about_topic"], "view": decided["view"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-docs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["dev", "paraphrase"])
    options = parser.parse_args(argv)

    from clusteragent import ClusterAgent

    agent = ClusterAgent(seed=options.seed, progress=False)
    chat = agent.chat_model()
    routes = [(r, "dev") for r in DEV if options.only != "paraphrase"] + \
             [(r, "paraphrase") for r in PARAPHRASES if options.only != "dev"]
    right = {"dev": [], "paraphrase": []}
    for (corpus, facet, instruction, expected), group in routes:
        found = route_one(agent, chat, corpus, facet, instruction, options)
        right[group].append(found["view"] == expected)
        print(json.dumps({**found, "set": group, "expected": expected, "right": found["view"] == expected}),
              flush=True)
    print(json.dumps({"summary": {g: f"{sum(r)}/{len(r)}" for g, r in right.items() if r}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

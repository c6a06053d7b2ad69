"""Chat refinement with a scripted model: each operation's invariants, undo, persistence across processes."""

import json
import re

import numpy as np
import pytest
from fakes import ScriptedChatModel, choices, delimited_texts, request_schema
from test_agent import MOOD, TEXTS, TOPIC, TRUTH, scripted

from clusteragent import ClusterAgent
from clusteragent.refine_names import NOT_LISTED, quoted
from clusteragent.refine_ops import SPLIT_PARTS


def chat_model(decisions, facet="topic", fits=None):
    """The agent's scripted model, plus refine decisions from a queue and match answers from the truth (or
    `fits(text, description)`, the description as the match prompt gives it)."""
    base = {"facet": scripted(facet).script, "described": ""}
    queue = list(decisions)

    def answer(messages, kwargs):
        schema, spec = request_schema(kwargs)
        if schema == "ActionChoice":
            return json.dumps({"action": queue[0]["action"]})
        if schema.endswith("Arguments"):
            decision = dict(queue.pop(0))
            if decision.pop("action") == "reinstruct":  # the model reads the new instruction from now on
                base["facet"] = scripted("mood").script
            base["described"] = decision.get("description", "")
            wanted = spec["properties"]
            if "cluster" in wanted and "clusters" in decision:
                decision["cluster"] = decision.pop("clusters")[0]
            empty = {"string": "", "array": [], "integer": 2}
            return json.dumps({k: decision.get(k, empty.get(v.get("type"), "")) for k, v in wanted.items()})
        if schema == "Match":  # does the text (a group: most of its texts) fit the description the message gave?
            shown = delimited_texts(messages[-1].content)
            asked = re.match(r"Description: (.*)", messages[-1].content).group(1)  # as the prompt gives it
            fit = [fits(t, asked) if fits else base["described"] in " ".join(TRUTH[t]) for t in shown]
            return json.dumps({"fits": "yes" if sum(fit) > len(fit) / 2 else "no"})
        return base["facet"](messages, kwargs)

    return ScriptedChatModel(script=answer)


def fitted(decisions, **kw):
    agent = ClusterAgent(model=chat_model(decisions), progress=False, max_model_calls=60, **kw)
    return agent.fit(TEXTS, instruction="Cluster by topic.")


def sizes(agent):
    return {c["name"]: c["size"] for c in agent.result_.clusters}


def test_merge_leaves_k_minus_one_and_undo_restores_exactly():
    agent = fitted([{"action": "merge", "clusters": ["weather", "cooking"], "new_name": "home"}, {"action": "undo"}])
    before = agent.result_
    reply = agent.chat('Merge "weather" and "cooking" into one called home.')
    after = agent.result_
    assert after.k == before.k - 1 and sum(sizes(agent).values()) == len(TEXTS)
    assert sizes(agent)["Home"] == sizes_of(before)["Weather"] + sizes_of(before)["Cooking"]  # a name has a capital
    assert "3 -> 2" in reply and sorted(after.ids) == sorted(before.ids)
    assert reply.endswith(" texts changed cluster."), reply  # a count, no "text(s)"
    agent.chat("undo")
    again = agent.result_
    assert again.names == before.names and np.array_equal(again.cluster, before.cluster)


def sizes_of(result):
    return {c["name"]: c["size"] for c in result.clusters}


def test_split_by_a_facet_the_embeddings_miss_follows_the_models_parts_and_every_text_stays_once():
    model = chat_model([{"action": "split", "clusters": ["angry"], "n": 2}], facet="mood")
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by mood.")
    k = agent.result_.k
    reply = agent.chat('Split "angry" into two more specific clusters.')
    assert agent.result_.k == k + 1, reply
    assert {"Rain", "Sun"} <= set(agent.result_.names) and "Angry" not in agent.result_.names
    assert sum(sizes(agent).values()) == len(TEXTS) and len(agent.result_.ids) == len(set(agent.result_.ids))


def test_split_on_a_run_by_subject_matter_follows_the_texts_structure():
    """There the embeddings made the clusters, so they divide one: k-means in two of its texts, each part named
    from its own texts, with no proposal asked of the model."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    agent = fitted([{"action": "split", "clusters": ["weather"], "n": 2}])
    before, k = agent.result_, agent.result_.k
    members = np.flatnonzero(before.cluster == next(c["cluster"] for c in before.clusters if c["name"] == "Weather"))
    asked = len(agent.model.calls)
    reply = agent.chat('Split "weather" into two more specific clusters.')
    after = agent.result_
    assert after.k == k + 1 and "Weather" not in after.names, reply
    expected = KMeans(2, n_init=3, random_state=agent.config.seed).fit_predict(agent.vectors_[members])
    assert adjusted_rand_score(expected, after.cluster[members]) == 1.0
    schemas = [request_schema(c["kwargs"])[0] for c in agent.model.calls[asked:]]
    assert "SplitProposal" not in schemas and "ClusterSpec" in schemas
    parts = [c for c in after.clusters if c["cluster"] in set(after.cluster[members])]
    # the scripted model names a part "weather" (taken), then "truth" (taken once the first part has it): that
    # part gets a statistical name, marked so, not a numbered copy of the old name
    assert [c["named_by"] for c in parts] == ["model", "statistics"] and " / " in parts[1]["name"], parts
    assert sum(sizes(agent).values()) == len(TEXTS)


@pytest.mark.parametrize("message, n", [
    ('Split "weather" into two.', 2), ("Split cluster 3 into three parts.", 3), ('Split "Top 10 in 5 days".', 2),
    ("Split it in 4.", 4), ("Split weather in half.", 2), ('Split "weather".', 2),
])
def test_a_split_takes_its_number_of_parts_from_the_message(message, n):
    from clusteragent.refine_parts import parts_asked

    assert parts_asked(message) == n


def test_a_split_into_two_makes_two_parts_whatever_count_the_model_read():
    agent = fitted([{"action": "split", "clusters": ["weather"], "n": 6}])
    k = agent.result_.k
    reply = agent.chat('Split "weather" into two.')
    assert agent.result_.k == k + 1 and " and " in reply and reply.count('" (') == 2, reply


@pytest.mark.parametrize("message, parts", [
    ('Split "Negative" into anger and sadness.', ["anger", "sadness"]),
    ('Split "Travel" into "Flights", "Hotels" and "Car rentals".', ["Flights", "Hotels", "Car rentals"]),
    ("Split travel into two groups: praise and complaints", ["praise", "complaints"]),
    ("Split travel into two: praise and complaints", ["praise", "complaints"]),
    ('Split "Living in Italy" into food and wine.', ["food", "wine"]),  # "in" inside a cluster's name
    ("split sports into football, tennis, or golf please", ["football", "tennis", "golf"]),
    ('Split "Food and drink" into two.', []), ("Split it in half.", []), ('Split "X" into more specific groups.', []),
    ("Split Labor and finance by whether it is about jobs or money.", ["jobs", "money"]),
    ('Split "Negative" by whether the texts are angry, sad or afraid.', ["angry", "sad", "afraid"]),
    ("Split travel by whether it is about flights.", []),
])
def test_a_split_takes_its_parts_names_from_the_message(message, parts):
    from clusteragent.refine_parts import parts_named

    assert parts_named(message, ["Negative", "Travel", "Living in Italy", "Food and drink", "X"]) == parts


def test_a_split_into_parts_the_message_names_has_the_model_sort_texts_into_them():
    agent = fitted([{"action": "split", "clusters": ["weather"], "n": 5}])
    before, asked = agent.result_, len(agent.model.calls)
    members = np.flatnonzero(before.cluster == next(c["cluster"] for c in before.clusters if c["name"] == "Weather"))
    reply = agent.chat('Split "weather" into "Rain" and sun.')
    after = agent.result_
    assert after.k == before.k + 1 and '"Rain" (' in reply and '"Sun" (' in reply, reply
    parts = {c["name"]: c for c in after.clusters if c["cluster"] in set(after.cluster[members])}
    assert sorted(parts) == ["Rain", "Sun"] and all(c["named_by"] == "user" for c in parts.values())
    assert parts["Rain"]["description"] == "Texts about rain."
    calls = [c for c in agent.model.calls[asked:] if request_schema(c["kwargs"])[0] == "ClusterChoice"]
    assert calls and all(sorted(choices(c["kwargs"], "cluster")) == ["Rain", "Sun"] for c in calls)
    assert f"The model sorted {len(calls)} of its texts" in reply
    assert "SplitProposal" not in [request_schema(c["kwargs"])[0] for c in agent.model.calls[asked:]]
    assert sum(sizes(agent).values()) == len(TEXTS)


def test_a_split_into_parts_the_message_names_may_keep_the_wholes_name_for_one():
    """"Split Positive into positive and neutral": the user takes neutral texts out of "Positive"; the part
    named as the whole was refused as the model's would be, and the split went to the model's own names."""
    agent = fitted([{"action": "split", "clusters": ["weather"], "n": 2}])
    before, asked = agent.result_, len(agent.model.calls)
    weather = next(c["cluster"] for c in before.clusters if c["name"] == "Weather")
    reply = agent.chat("Split weather into weather and rain.")
    parts = {c["name"]: c for c in agent.result_.clusters if c["cluster"] in set(agent.result_.cluster[
        before.cluster == weather])}
    assert sorted(parts) == ["Rain", "Weather"] and all(c["named_by"] == "user" for c in parts.values()), reply
    calls = [c for c in agent.model.calls[asked:] if request_schema(c["kwargs"])[0] == "ClusterChoice"]
    assert calls and all(sorted(choices(c["kwargs"], "cluster")) == ["Rain", "Weather"] for c in calls)


@pytest.mark.parametrize("message, by, n", [
    ('Split "Web tools" by the platform they target.', "the platform they target", 0),
    ("split sports by sport into three please", "sport", 3),
    ("Split travel according to the destination, thanks", "the destination", 0),
    ("Split food based on cuisine in 3", "cuisine", 3),
    ('Split "Made by hand" in two.', "", 2),  # "by" inside a cluster's name
    ("Split Labor and finance by whether it is about jobs or money.", "", 2),  # names the parts
    ('Split "weather" into two.', "", 2),
])
def test_a_split_takes_what_to_split_by_from_the_message(message, by, n):
    from clusteragent.refine_parts import parts_asked, split_criterion

    found = split_criterion(message, ["Web tools", "Made by hand"])
    assert found == by and parts_asked(message, 0 if found else 2) == n


def test_a_split_by_what_the_message_says_has_the_model_propose_and_sort_as_many_parts_as_it_finds():
    """On a run by subject matter a split follows the texts' structure, unless the message says what to split
    by: the model proposes the parts by that (2 to 8 of them), sorts texts into them, and a part it sorts
    nothing into, or one named as the whole or as another part in more words, is dropped."""
    model = chat_model([{"action": "split", "clusters": ["weather"], "n": 2}])
    base = model.script

    def answer(messages, kwargs):
        schema, spec = request_schema(kwargs)
        if schema == "SplitProposal":
            return json.dumps({"clusters": [{"name": n, "description": f"texts about {n}"}
                                            for n in ("rain", "weather", "sun", "fog", "sun spells")]})
        if schema == "ClusterChoice" and "Fog" in choices(kwargs, "cluster"):
            text = delimited_texts(messages[-1].content)[0]
            return json.dumps({"cluster": "rain" if int(text[-2]) % 2 == 0 else "sun"})
        return base(messages, kwargs)

    model.script = answer
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    before, asked = agent.result_, len(agent.model.calls)
    reply = agent.chat('Split "weather" by the kind of weather.')
    after = agent.result_
    assert after.k == before.k + 1 and {"Rain", "Sun"} <= set(after.names) and "Fog" not in after.names, reply
    assert reply.startswith('Split "Weather" by the kind of weather into "Rain" (') and "The model sorted" in reply
    calls = agent.model.calls[asked:]
    proposal = next(c for c in calls if request_schema(c["kwargs"])[0] == "SplitProposal")
    spec = request_schema(proposal["kwargs"])[1]["properties"]["clusters"]
    assert (spec["minItems"], spec["maxItems"]) == (2, 8)
    assert "by the kind of weather" in proposal["messages"][-1].content
    sorted_ = [c for c in calls if request_schema(c["kwargs"])[0] == "ClusterChoice"]
    assert sorted_ and all("by the kind of weather" in c["messages"][0].content for c in sorted_)
    assert all(sorted(choices(c["kwargs"], "cluster")) == ["Fog", "Rain", "Sun"] for c in sorted_)
    assert sum(sizes(agent).values()) == len(TEXTS)


def test_a_split_by_what_the_message_says_drops_a_part_the_model_sorts_only_one_text_into():
    """Asked to split a cluster of 22 by what each case is about, the model made six parts, three of one text."""
    model = chat_model([{"action": "split", "clusters": ["weather"], "n": 2}])
    base, sorted_once = model.script, []

    def answer(messages, kwargs):
        schema, spec = request_schema(kwargs)
        if schema == "SplitProposal":
            return json.dumps({"clusters": [{"name": n, "description": f"texts about {n}"} for n in ("rain", "sun", "fog")]})
        if schema == "ClusterChoice" and "Fog" in choices(kwargs, "cluster"):
            text = delimited_texts(messages[-1].content)[0]
            if not sorted_once:
                sorted_once.append(text)
                return json.dumps({"cluster": "fog"})
            return json.dumps({"cluster": "rain" if int(text[-2]) % 2 == 0 else "sun"})
        return base(messages, kwargs)

    model.script = answer
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    k = agent.result_.k
    reply = agent.chat('Split "weather" by the kind of weather.')
    assert sorted_once and agent.result_.k == k + 1 and {"Rain", "Sun"} <= set(agent.result_.names), reply
    assert "Fog" not in agent.result_.names and sum(sizes(agent).values()) == len(TEXTS)


def test_a_split_by_what_the_message_says_with_no_usable_part_falls_to_two_parts_by_the_structure():
    model = chat_model([{"action": "split", "clusters": ["weather"], "n": 2}])
    base = model.script

    def answer(messages, kwargs):
        if request_schema(kwargs)[0] == "SplitProposal":  # every part another cluster's name, or the whole's
            return json.dumps({"clusters": [{"name": n, "description": f"texts about {n}"}
                                            for n in ("football", "cooking", "weather")]})
        return base(messages, kwargs)

    model.script = answer
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    k = agent.result_.k
    reply = agent.chat('Split "weather" by the kind of weather.')
    assert agent.result_.k == k + 1 and "The model sorted" not in reply, reply
    assert sum(sizes(agent).values()) == len(TEXTS)


def test_rename_changes_only_the_name():
    agent = fitted([{"action": "rename", "clusters": ["football"], "new_name": "Sport"}])
    before = agent.result_.cluster.copy()
    agent.chat('Rename "football" to "Sport".')
    assert "Sport" in agent.result_.names and "Football" not in agent.result_.names
    assert np.array_equal(agent.result_.cluster, before)


@pytest.mark.parametrize("model_name", ["Weather", "Climate", ""])
def test_rename_x_to_y_takes_y_whatever_name_the_model_gives(model_name):
    """The model answered the cluster's present name, and the run had it named again ("Tech news" for "Rename
    Technology to Business and technology.")."""
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": model_name}])
    before = agent.result_.cluster.copy()
    reply = agent.chat("Rename weather to storms and rain: Texts about storms and rain.")
    assert "Storms and rain" in agent.result_.names and "Weather" not in agent.result_.names, reply
    assert clusters_by_name(agent)["Storms and rain"]["named_by"] == "user"
    assert np.array_equal(agent.result_.cluster, before)


def test_rename_x_to_something_clearer_has_the_model_name_it():
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Weather"}])
    reply = agent.chat("Rename weather to something clearer.")
    renamed = set(agent.result_.names) - {"Football", "Cooking"}
    assert len(renamed) == 1 and renamed.isdisjoint({"Weather", "Something clearer"}), reply


@pytest.mark.parametrize("message", ["Rename Mixed to Football.", 'Rename "Mixed" to "Football"'])
def test_a_rename_of_a_name_no_cluster_has_to_a_clusters_name_changes_nothing(message):
    """No cluster is "Mixed": the run renamed "Football", the cluster the message writes, to "Mixed"."""
    agent = fitted([{"action": "rename", "clusters": ["Cooking"], "new_name": "Mixed"}])
    names = sorted(agent.result_.names)
    reply = agent.chat(message)
    assert reply.startswith('Nothing changed: No cluster is named "Mixed"; "Football" is'), reply
    assert sorted(agent.result_.names) == names


@pytest.mark.parametrize("message, removed", [
    ("Delete the Shopping list cluster.", "Shopping list"), ("Get rid of 'Misc'", "Misc"),
    ("please remove cluster shopping list", "Shopping list"), ("Drop Misc and keep Shopping list.", "Misc"),
    ("Remove the last change.", ""), ("Remove text 5 from Misc.", ""), ("Delete the texts about food.", ""),
])
def test_a_message_removes_the_cluster_whose_name_follows_its_verb(message, removed):
    from clusteragent.refine_names import operation_asked, removed_cluster

    assert removed_cluster(message, ["Shopping list", "Misc", "Shopping"]) == removed
    if removed:  # the model read "Delete the Language exchange cluster." as an undo
        assert operation_asked(message, "undo", ["Shopping list", "Misc"]) == "remove"


def test_a_removed_clusters_texts_go_to_the_clusters_nearest_them_and_undo_brings_it_back():
    agent = fitted([{"action": "undo", "clusters": ["Weather"]}])
    before = agent.result_
    weather = next(c["cluster"] for c in before.clusters if c["name"] == "Weather")
    reply = agent.chat("Delete the Weather cluster.")
    after = agent.result_
    assert reply.startswith(f'Removed "Weather"; its {int((before.cluster == weather).sum())} texts went to'), reply
    assert "Weather" not in after.names and after.k == before.k - 1 and sum(sizes(agent).values()) == len(TEXTS)
    moved = before.cluster == weather
    assert np.array_equal(after.cluster[~moved], before.cluster[~moved]) and weather not in set(after.cluster)
    agent.chat("undo")
    assert np.array_equal(agent.result_.cluster, before.cluster) and "Weather" in agent.result_.names


def test_a_cluster_called_by_words_of_its_name_is_the_one_changed_whichever_the_model_chose():
    from clusteragent.refine_names import called_clusters

    names = ["Weather reporter", "Car maintenance", "Car care", "Travel", "Travel alerts", "Pet care"]
    assert called_clusters('The weather cluster should be called "Weather".', names) == [(0, "Weather reporter")]
    assert called_clusters("Merge it with the car maintenance one.", names) == [(14, "Car maintenance")]
    assert called_clusters("What is in the travel cluster?", names) == [(11, "Travel")]  # the name that is only them
    assert called_clusters("Merge the car cluster.", names) == []  # two names have "car"
    assert called_clusters("Merge the car clusters.", names) == [(6, "Car maintenance"), (6, "Car care")]  # both
    assert called_clusters("Merge the two care ones.", names) == [(6, "Car care"), (6, "Pet care")]
    assert called_clusters("Merge the two clusters.", names) == []
    assert called_clusters("Merge the weather and pet ones.", names) == [(6, "Weather reporter"), (6, "Pet care")]
    assert called_clusters("Merge the weather and car clusters.", names) == [
        (6, "Weather reporter"), (6, "Car maintenance"), (6, "Car care")]
    assert called_clusters("Merge the weather and pet cluster.", names) == []  # one cluster has not both
    anime = ["Anime", "Anime fans", "Anime reviews", "Art"]  # "Anime", a top cluster over the two and "Art"
    assert called_clusters("Merge the anime clusters into one.", anime, tops=["Anime"]) == [
        (6, "Anime fans"), (6, "Anime reviews")]
    assert called_clusters("Rename the anime cluster.", anime, tops=["Anime"]) == [(7, "Anime")]
    assert called_clusters("Merge the anime ones.", anime[:2]) == [(6, "Anime"), (6, "Anime fans")]  # no top: both
    assert called_clusters("Merge the architecture clusters.", ["Architectural", "Architecture fans", "Art"]) == [
        (6, "Architectural"), (6, "Architecture fans")]  # one word by its stem
    assert called_clusters("Split the biggest travel cluster.", names) == []  # no name has "biggest"
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Weather reports"},
                    {"action": "rename", "clusters": ["cooking"], "new_name": "Sky"}])  # the model's wrong choice
    agent.chat('Rename "weather" to "Weather reports".')
    agent.chat('The weather cluster should be called "Sky".')
    assert "Sky" in agent.result_.names and "Cooking" in agent.result_.names
    assert "Weather reports" not in agent.result_.names


@pytest.mark.parametrize("message, named", [
    ("The weather cluster is about sky watching; rename it.", "Sky watching"),  # the message's case, a capital
    ("Rename weather to NASA Sky Watch.", "NASA Sky Watch"),  # the user's capitals stay
])
def test_a_new_name_is_taken_as_the_message_writes_it_not_as_the_model_cased_it(message, named):
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Sky Watching"
                     if "watching" in message else "Nasa sky watch"}])
    agent.chat(message)
    assert named in agent.result_.names and clusters_by_name(agent)[named]["named_by"] == "user"


def clusters_by_name(agent):
    return {c["name"]: c for c in agent.result_.clusters}


def test_a_merge_the_message_names_nothing_for_is_named_by_the_model_not_by_its_argument():
    # The small model fills new_name whether or not the user gave one; a name the message does not contain
    # is its own, and the merged cluster is named as a run names one instead.
    agent = fitted([{"action": "merge", "clusters": ["weather", "cooking"], "new_name": "Home Stuff"}])
    reply = agent.chat('Merge "weather" and "cooking".')
    merged = {n: c for n, c in clusters_by_name(agent).items() if n != "Football"}
    assert "Home Stuff" not in merged and len(merged) == 1, reply
    (name, cluster), = merged.items()
    assert cluster["named_by"] == "model" and cluster["description"].startswith(f"texts about {name.lower()}")
    assert f'into "{name}"' in reply


def test_a_name_the_message_writes_only_inside_a_clusters_name_is_the_models_not_the_users():
    # The small model took "Car care" for the new name of 'Merge "Car care questions" and "Car maintenance".',
    # which a top cluster had: the merge was refused with "choose another name", though the user chose none.
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Weather reports"},
                    {"action": "merge", "clusters": ["Weather reports", "cooking"], "new_name": "Weather"}])
    agent.chat('Rename "weather" to "Weather reports".')
    reply = agent.chat('Merge "Weather reports" and "cooking".')
    merged = {n: c for n, c in clusters_by_name(agent).items() if n != "Football"}
    assert len(merged) == 1 and next(iter(merged.values()))["named_by"] == "model", reply


@pytest.mark.parametrize("message", ['Merge "weather" into "cooking".', "Merge cluster 0 into the cluster 2 please."])
def test_a_merge_into_one_of_the_two_keeps_that_ones_name(message):
    # the small model writes the first cluster's name as the new one
    agent = fitted([{"action": "merge", "clusters": ["weather", "cooking"], "new_name": "weather"}] * 2)
    before = sizes(agent)
    assert list(before) == ["Weather", "Football", "Cooking"]  # cluster 0, 1, 2
    reply = agent.chat(message)
    assert sizes(agent) == {"Football": before["Football"], "Cooking": before["Weather"] + before["Cooking"]}, reply
    assert 'into "Cooking"' in reply
    agent.chat("undo")
    reply = agent.chat(message.rstrip(".") + ' and call it "Home".')  # a new name the message gives wins
    assert "Home" in sizes(agent) and "Cooking" not in sizes(agent), reply


def test_a_moves_destination_is_the_cluster_named_after_into_under_or_to():
    from clusteragent.refine_names import destination
    from clusteragent.tools import taxonomy as tx

    tax = tx.Taxonomy()
    for name in ("Travel alerts", "Travel", "Billing", "Payments", "Into the wild"):
        tax = tax.added(name, "texts")[0]
    rows = np.arange(5)
    assert destination('Move "Travel alerts" into the top cluster "Travel".', tax, rows) == "Travel"
    assert destination('Put "Billing" under "Travel alerts".', tax, rows) == "Travel alerts"
    assert destination('Texts about refunds belong in "Billing", not "Payments".', tax, rows) == "Billing"
    assert destination('Move the texts of "Payments" to "Into the wild".', tax, rows) == "Into the wild"
    assert destination('Texts 3 and 4 belong to "Billing" in my view.', tax, rows) == "Billing"
    assert destination('Texts about refunds belong with "Billing".', tax, rows) is None


def test_into_inside_a_quoted_name_is_not_where_a_merge_goes():
    from clusteragent.refine_names import merged_into
    from clusteragent.tools import taxonomy as tx

    tax = tx.Taxonomy()
    for name in ("Into the wild", "Hiking"):
        tax = tax.added(name, "texts")[0]
    both, rows = ["Into the wild", "Hiking"], np.array([0, 1])
    assert merged_into('Merge "Into the wild" and "Hiking".', both, tax, rows) == ""
    assert merged_into('Merge "Hiking" into "Into the wild".', both[::-1], tax, rows) == "Into the wild"
    # the model's new name, one of the two, where the message merges neither into the other: not the user's
    assert merged_into('Merge "Into the wild" and "Hiking".', both, tax, rows, given="Hiking") == ""
    assert merged_into('Merge "Into the wild" and "Hiking".', both, tax, rows, given="Outdoors") == "Outdoors"


def test_clusters_named_by_size_are_found_by_their_sizes():
    from clusteragent.refine_names import named_clusters
    from clusteragent.tools import taxonomy as tx

    tax = tx.Taxonomy()
    for name in ("Rain", "Goals", "Bread", "Snow"):
        tax = tax.added(name, "texts")[0]
    rows = np.array([0] * 5 + [1] * 9 + [2] * 2 + [3] * 4)
    tax = tax.added("Everything", "a top cluster, no texts of its own")[0]  # as a chat lists the top clusters
    assert named_clusters("Merge the two smallest clusters.", tax, rows) == ["Bread", "Snow"]
    assert named_clusters("Split the largest cluster in two.", tax, rows) == ["Goals"]
    assert named_clusters("Move text 4 from the biggest one into the 3 smallest.", tax, rows) == [
        "Goals", "Bread", "Snow", "Rain"]
    assert named_clusters('Merge "Rain" into the smallest cluster.', tax, rows) == ["Rain", "Bread"]
    assert named_clusters("Which is the largest?", tax, rows) == ["Goals"]
    assert named_clusters("Move the texts about the smallest phones into Snow.", tax, rows) == []
    assert named_clusters('Rename "The largest lakes" to Lakes.', tax.added("The largest lakes", "x")[0], rows) == [
        "The largest lakes"]


def test_a_cluster_the_message_writes_unquoted_replaces_a_choice_it_does_not_write():
    from clusteragent.refine_names import NOT_LISTED, with_written

    names = ["Labor and finance", "Finance", "Athletic competition", "Football", "Baseball"]
    assert with_written(["Athletic competition"], "Split Labor and finance by jobs or money.", names, "split") == [
        "Labor and finance"]  # the longer name, not "Finance" inside it
    assert with_written([NOT_LISTED, "Football"], "Football and baseball are the same, merge them.", names, "merge") == [
        "Baseball", "Football"]
    assert with_written(["Football"], "Split Athletic competition into Football and Tennis.", names, "split") == [
        "Football"]
    assert with_written(["Finance"], "Give it a better name.", names, "rename") == ["Finance"]  # nothing written
    assert with_written(["Finance"], "Texts about football belong in Baseball.", names, "move") == ["Baseball"]
    # the model gives two: a merge takes every cluster the message writes
    assert with_written([NOT_LISTED, NOT_LISTED], "Merge Athletic competition, Finance and Baseball.", names,
                        "merge") == ["Athletic competition", "Finance", "Baseball"]


def test_a_move_goes_to_the_cluster_the_message_writes_last_where_the_model_chose_one_it_does_not_write():
    agent = fitted([{"action": "move", "clusters": ["football"], "ids": ["1", "2"]}])
    reply = agent.chat("Texts 1 and 2 about the weather belong to cooking.")
    assert agent.result_.cluster_names()[:2] == ["Cooking", "Cooking"], reply


def test_a_split_of_a_cluster_named_unquoted_splits_that_one():
    agent = fitted([{"action": "split", "clusters": ["football"], "n": 2}])
    reply = agent.chat("Split weather by whether it is about rain or sun.")
    assert "Weather" not in agent.result_.names and "Football" in agent.result_.names, reply


def test_a_merge_of_the_two_smallest_clusters_merges_those_whatever_the_model_named():
    agent = fitted([{"action": "merge", "clusters": ["(not in the list)", "weather"], "new_name": ""}])
    before = sizes(agent)
    reply = agent.chat("Merge the two smallest clusters.")
    smallest = list(before)[-2:]  # clusters.json's order: largest first, ties by id
    after = sizes(agent)
    assert len(after) == 2 and all(name not in after for name in smallest), reply
    assert sorted(after.values()) == sorted([before[list(before)[0]], sum(before[n] for n in smallest)])


@pytest.mark.parametrize("message", ["Merge all the outdoor clusters into one.", "Merge the two outdoor ones."])
def test_clusters_called_in_the_plural_by_a_word_of_their_names_are_all_merged(message):
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Outdoor weather"},
                    {"action": "rename", "clusters": ["football"], "new_name": "Outdoor games"},
                    {"action": "merge", "clusters": ["Outdoor weather", "Cooking"], "new_name": ""}])  # its own pick
    agent.chat('Rename "weather" to "Outdoor weather".')
    agent.chat('Rename "football" to "Outdoor games".')
    before = sizes(agent)
    reply = agent.chat(message)
    after = sizes(agent)
    assert len(after) == 2 and "Cooking" in after and after["Cooking"] == before["Cooking"], reply
    assert max(after.values()) == before["Outdoor weather"] + before["Outdoor games"]


@pytest.mark.parametrize("message", ["Put the angry texts in their own cluster.", "Angry ones into a new group."])
def test_texts_asked_into_a_cluster_of_their_own_get_a_new_one_where_the_model_read_a_move(message):
    agent = fitted([{"action": "move", "clusters": ["weather"], "new_name": "Angry", "description": "angry"}])
    before = sizes(agent)
    reply = agent.chat(message)
    assert agent.result_.k == len(before) + 1 and sizes(agent).get("Angry", 0) > 0 and reply.startswith("Added"), reply
    assert sum(sizes(agent).values()) == len(TEXTS)


def test_a_new_clusters_rule_the_model_copied_from_the_list_is_made_of_its_name():
    """For "Move the WordPress questions into their own cluster." the model gave the rule of the top cluster
    over WordPress, Drupal and Magento; the texts matched to that rule were all three's."""
    from clusteragent.refine_matching import copies_a_rule

    listed = ["Questions about web development, including WordPress, Drupal, Magento and Apache.", "Texts about anger."]
    message = "Move the WordPress questions into their own cluster."
    assert copies_a_rule("Texts about WordPress, Drupal, Magento, and more.", message, listed)
    assert not copies_a_rule("Texts about WordPress.", message, listed)
    assert not copies_a_rule("Texts expressing anger.", "Put the angry texts in their own cluster.", listed)
    model = chat_model([{"action": "rename", "clusters": ["weather"], "new_name": "Weather",
                         "description": "Texts about rain, storms and snow."},
                        {"action": "add_cluster", "new_name": "Angry", "description": "Texts about rain, storms and snow."}],
                       fits=lambda text, described: TRUTH[text][1] == "angry")
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    agent.chat('Rename "weather" to "Weather": texts about rain, storms and snow.')
    reply = agent.chat("Put the angry texts in their own cluster.")
    angry = next(c for c in agent.result_.clusters if c["name"] == "Angry")
    assert reply.startswith("Added") and "storm" not in angry["description"].lower() and "angry" in angry["description"].lower()


def test_texts_a_move_calls_by_their_kind_are_checked_as_texts_about_it():
    """The model answered no for six Reddit titles about beer asked whether they fit "the beer posts", and yes
    for five asked about "posts about beer": a move checks texts against the second."""
    model = chat_model([{"action": "move", "clusters": ["cooking"], "description": "Texts about recipes."}],
                       fits=lambda text, asked: asked == "texts about storm" and "storm" in text)
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    before = agent.result_.cluster.copy()
    reply = agent.chat('Move the storm texts into "Cooking".')
    moved = np.flatnonzero(agent.result_.cluster != before)
    assert reply.startswith("Moved") and len(moved) > 0 and all("storm" in TEXTS[i] for i in moved), reply


def test_what_a_move_calls_its_texts_is_read_without_the_cluster_they_go_to():
    from clusteragent.refine_names import described_in

    names = ["Other languages", "Brewery tours", "Billing"]
    assert described_in("Move all tweets mentioning refunds to Billing.", names=names) == "refunds"
    assert described_in("Move the posts in Portuguese into Other languages.", names=names) == "the posts in Portuguese"
    assert described_in("Move the Portuguese posts to Other languages.", names=names) == "posts in Portuguese"
    assert described_in("Put the beer posts in Brewery tours.", names=names) == "posts about beer"
    assert described_in("Move texts about travel to Europe into Travel.", names=names) == "travel to Europe"


def test_texts_given_by_id_into_a_cluster_of_their_own_are_that_cluster():
    agent = fitted([{"action": "move", "clusters": ["weather"], "new_name": "Picked", "description": "picked texts",
                     "ids": ["3", "17", "99"]}])  # 99 is not written in the message
    reply = agent.chat("Put texts 3 and 17 in their own cluster.")
    assert sizes(agent).get("Picked") == 2 and reply.startswith('Added "Picked" with 2 texts (by id)'), reply
    picked = {i for i, name in zip(agent.result_.ids, agent.result_.cluster_names()) if name == "Picked"}
    assert picked == {3, 17} and sum(sizes(agent).values()) == len(TEXTS)


@pytest.mark.parametrize("message", ["Cluster them by mood instead.", "Now group the texts by mood, please."])
def test_a_message_to_cluster_by_something_else_is_a_new_instruction_whatever_question_the_model_read(message):
    agent = fitted([{"action": "explain", "instruction": message}])
    reply = agent.chat(message)
    assert agent.result_.run["instruction"] == message and "explain" not in reply.lower(), reply


def test_operation_asked_leaves_other_messages_to_the_model():
    from clusteragent.refine_names import operation_asked

    assert operation_asked('Group "A" and "B" together.', "none") == "none"
    assert operation_asked("Which cluster holds texts grouped by date?", "find") == "find"
    assert operation_asked("Cluster them by sentiment.", "merge") == "merge"  # read otherwise
    # read as a call for finer clusters, it re-split the clusters by topic
    assert operation_asked("Group them by how urgent the request is instead.", "granularity") == "reinstruct"
    # a question of size about a cluster the message names, read as one for the cluster holding such texts
    assert operation_asked("How many texts are in Pet care?", "find", ["Weather", "Pet care"]) == "describe"
    assert operation_asked("How many texts are about dogs?", "find", ["Weather", "Pet care"]) == "find"
    assert operation_asked("Which cluster has texts about pet care?", "find", ["Pet care"]) == "find"


def test_how_many_texts_a_named_cluster_holds_is_answered_by_describing_it_whatever_the_model_read():
    agent = fitted([{"action": "find", "description": "texts in weather", "clusters": ["Cooking"]}])
    reply = agent.chat("How many texts are in Weather?")
    assert reply.startswith('"Weather"') and f"holds {sizes(agent)['Weather']} of {len(TEXTS)} texts" in reply, reply


def test_a_new_clusters_name_the_model_gave_is_in_plain_case_and_one_the_user_wrote_is_as_written():
    agent = fitted([{"action": "add_cluster", "new_name": "Angry Texts", "description": "angry"},
                    {"action": "add_cluster", "new_name": "Happy Texts", "description": "happy"}])
    reply = agent.chat("Make a new cluster for the angry texts.")
    assert "Angry texts" in sizes(agent), reply
    reply = agent.chat("Make a new cluster Happy Texts for the happy ones.")
    assert "Happy Texts" in sizes(agent), reply


def test_the_words_that_call_clusters_give_no_name_to_the_cluster_they_make():
    """The model named "Merge the anime clusters into one." "Anime", the name of their top cluster, and the
    turn was refused as a clash; the user gave no name."""
    from clusteragent.refine_names import as_written

    names = ["Anime", "Anime fans", "Anime reviews"]
    assert as_written("Anime", "Merge the anime clusters into one.", names) == ""
    assert as_written("Anime", "Merge the anime clusters into one called anime.", names) == "Anime"
    assert as_written("Weather news", "Rename the weather cluster to weather news.", names) == "Weather news"


def test_a_rename_without_a_name_is_named_again_by_the_model_unlike_its_present_name():
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Weather Reports", "description": ""}])
    before = agent.result_.cluster.copy()
    reply = agent.chat("Give the weather cluster a better name.")
    renamed = set(agent.result_.names) - {"Football", "Cooking"}
    assert len(renamed) == 1 and renamed != {"Weather"} and "Weather Reports" not in renamed, reply
    assert clusters_by_name(agent)[renamed.pop()]["named_by"] == "model"
    assert np.array_equal(agent.result_.cluster, before)


def test_by_a_facet_other_than_subject_matter_a_merge_joins_the_values_and_a_rename_needs_a_name():
    # asked for one name over two values of the facet, the model names their topic ("Financial growth" for
    # positive and neutral sentences); the values' own names say what the merged cluster holds
    agent = ClusterAgent(model=chat_model([{"action": "rename", "clusters": ["happy"], "new_name": "Happy"},
                                           {"action": "merge", "clusters": ["angry", "happy"]}], facet="mood"),
                         progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by the mood of the writer.")
    assert sorted(agent.result_.names) == ["Angry", "Happy"]
    rules = {c["name"]: c["description"].rstrip(".") for c in agent.result_.clusters}
    assert "Nothing changed" in agent.chat('Give "happy" a better name.') and sorted(agent.result_.names) == ["Angry", "Happy"]
    reply = agent.chat('Merge "angry" and "happy".')
    (merged,) = agent.result_.clusters
    assert merged["name"] == "Angry and happy" and '"Angry and happy"' in reply
    assert merged["description"] == f'{rules["Angry"]}; or {rules["Happy"][0].lower()}{rules["Happy"][1:]}.'


@pytest.mark.parametrize("message, kept", [
    ("Rename weather to Sky.", False),  # the model copied a rule the user never gave
    ("Rename weather to Sky: texts about the sky and its clouds.", True),
])
def test_a_rename_keeps_the_rule_unless_the_message_gives_one(message, kept):
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Sky",
                     "description": "Texts about the sky and its clouds."}])
    old = clusters_by_name(agent)["Weather"]["description"]
    reply = agent.chat(message)
    sky = clusters_by_name(agent)["Sky"]
    assert sky["description"] == ("Texts about the sky and its clouds." if kept else old)
    assert sky["named_by"] == "user"
    # a rule kept under a new name is said, so the user sees whether it still fits ("Sky": "texts about weather")
    assert (f'Its rule is unchanged: "{old}"' in reply) != kept, reply


def test_a_rename_of_a_statistically_named_cluster_gives_it_the_rule_its_new_name_makes():
    """A statistical rule lists words its texts use; under the name the user gives it says nothing that name
    says, so the rule the name makes replaces it, and the reply says so."""
    agent = fitted([{"action": "split", "clusters": ["weather"], "n": 2},
                    {"action": "rename", "clusters": [NOT_LISTED], "new_name": "Sun spells", "description": ""}])
    agent.chat('Split "weather" into two more specific clusters.')
    listed = next(c for c in agent.result_.clusters if c["named_by"] == "statistics")
    assert "often use the words" in listed["description"]
    reply = agent.chat(f'Rename "{listed["name"]}" to Sun spells.')
    renamed = clusters_by_name(agent)["Sun spells"]
    assert renamed["description"].endswith("about sun spells.") and renamed["named_by"] == "user", renamed
    assert f'Its rule now says what the name says: "{renamed["description"]}"' in reply, reply


def test_move_by_id_and_by_description():
    agent = fitted([{"action": "move", "clusters": ["cooking"], "ids": ["1", "2"]},
                    {"action": "move", "clusters": ["football"], "description": "weather"}])
    reply = agent.chat("Texts 1 and 2 belong to cooking.")
    names = agent.result_.cluster_names()
    assert names[0] == "Cooking" and names[1] == "Cooking" and "2 texts" in reply
    reply = agent.chat("Texts about the weather belong to football.")
    names = np.array(agent.result_.cluster_names())
    # the model checked candidates; the cut keeps weather texts and stops before the others
    assert (names[TOPIC == "weather"] == "Football").mean() > 0.8, reply
    assert (names[TOPIC == "cooking"] == "Football").mean() < 0.2


def test_a_move_checks_the_texts_the_message_describes_not_a_rule_the_model_copied():
    chat = chat_model([{"action": "move", "clusters": ["football"], "description": "Texts about matches and goals."}],
                      fits=lambda text, described: TRUTH[text][0] == "weather")
    asked, script = [], chat.script

    def answer(messages, kwargs):
        if request_schema(kwargs)[0] == "Match":
            asked.append(messages[-1].content)
        return script(messages, kwargs)

    chat.script = answer
    agent = ClusterAgent(model=chat, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    reply = agent.chat('Move the texts about rain and storms into "Football".')
    assert asked and all("rain and storms" in a and "matches and goals" not in a for a in asked), reply


def test_a_cluster_name_the_model_copied_into_the_ids_is_dropped_and_the_description_moves_the_texts():
    agent = fitted([{"action": "move", "clusters": ["football"], "ids": ["Football", "Football"], "description": "weather"}])
    reply = agent.chat("Move all the texts about the weather into Football.")
    names = np.array(agent.result_.cluster_names())
    assert (names[TOPIC == "weather"] == "Football").mean() > 0.8 and "No text has the id" not in reply, reply


def test_texts_the_model_said_fit_are_matched_though_the_ranking_puts_others_between():
    """The model's answers on the texts it checked stand: a yes is matched and a no is not, wherever the cut
    falls (here the nearest candidate is a no and the yeses lie far apart, so the best cut is empty)."""
    from types import SimpleNamespace

    from clusteragent.fits import Match
    from clusteragent.refine_matching import cut_by_checks

    angles = np.linspace(0.0, 1.5, 200)
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # text i is the i-th nearest the description
    fits = {10, 46, 123, 199}

    def decide_many(requests, schema, **kw):
        return [Match(fits="yes" if int(delimited_texts(r[-1][1])[0].split()[1]) in fits else "no")
                for r in requests]

    ctx = SimpleNamespace(texts=[f"text {i}" for i in range(200)], llm=SimpleNamespace(decide_many=decide_many))
    turn = SimpleNamespace(ctx=ctx, budget=20)
    rows, verdict = cut_by_checks(turn, "odd texts", vectors @ np.array([1.0, 0.0]), 12)
    assert sorted(rows.tolist()) == sorted(fits) and sum(verdict.values()) == 4 and turn.budget == 20 - len(verdict)


def described_turn(kinds: list[str], angles: np.ndarray, fitting: str):
    """A turn over texts "<kind> <i>" at `angles` from a description at angle 0, one cluster per kind, where the
    model says a text fits when its kind is `fitting` (a group: when most texts shown to it are)."""
    from types import SimpleNamespace

    from clusteragent.fits import Match
    from clusteragent.tools import taxonomy as tx

    def decide_many(requests, schema, **kw):
        shown = [delimited_texts(r[-1][1]) for r in requests]
        return [Match(fits="yes" if 2 * sum(t.startswith(fitting) for t in ts) > len(ts) else "no") for ts in shown]

    texts = [f"{kind} {i}" for i, kind in enumerate(kinds)]
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    tax = tx.Taxonomy.from_specs([(kind, "") for kind in dict.fromkeys(kinds)])
    assignment = np.array([tax.find(kind).id for kind in kinds])
    ctx = SimpleNamespace(vectors=vectors, embed=lambda _: np.array([[1.0, 0.0]]), texts=texts,
                          llm=SimpleNamespace(decide_many=decide_many))
    return SimpleNamespace(ctx=ctx, tax=tax, assignment=assignment, features=vectors, budget=40)


def test_a_description_that_fits_a_whole_cluster_matches_all_its_texts_past_the_candidates_nearest_it():
    """300 texts of a kind that fits lie beyond 50 nearer ones that do not: ranked one by one, only the 200
    nearest the description were candidates; checked as a cluster, every one of the 300 is matched."""
    from clusteragent.refine_matching import MATCH_CANDIDATES, matching_rows

    kinds = ["near"] * 50 + ["fits"] * 300 + ["far"] * 50
    turn = described_turn(kinds, np.concatenate([np.linspace(0.0, 0.2, 50), np.linspace(0.3, 0.8, 300),
                                                 np.linspace(1.0, 1.5, 50)]), "fits")
    rows, how = matching_rows(turn, "texts that fit", set())
    assert 300 > MATCH_CANDIDATES and sorted(rows.tolist()) == list(range(50, 350))
    assert "(1 fit)" in how and turn.budget < 40


def test_a_cluster_only_part_of_which_fits_is_shown_to_the_model_with_its_texts_least_like_the_description():
    """Half angry and half glad texts about cooking, asked about "angry texts": its most typical texts alone
    may all be angry; shown its texts least like the description too, the model sees the glad half."""
    from clusteragent.refine_matching import matching_rows

    kinds = ["angry"] * 6 + ["glad"] * 6
    angles = np.array([0.40, 0.41, 0.42, 0.43, 0.44, 0.45, 0.0, 0.02, 0.04, 0.86, 0.88, 0.9])
    turn = described_turn(kinds, angles, "angry")
    turn.assignment[:] = 0  # one cluster of both kinds, its most typical texts the angry ones
    turn.tax = turn.tax.without([1])
    rows, how = matching_rows(turn, "angry texts", set())
    assert "(0 fit)" in how and set(rows.tolist()) <= set(range(6))


def test_add_cluster_pulls_in_matching_texts():
    agent = fitted([{"action": "add_cluster", "new_name": "Furious", "description": "angry"}])
    k = agent.result_.k
    agent.chat("Add a cluster for angry texts.")
    names = np.array(agent.result_.cluster_names())
    assert agent.result_.k >= k and "Furious" in agent.result_.names
    assert (names[MOOD == "angry"] == "Furious").mean() > 0.8 and (names[MOOD == "happy"] == "Furious").mean() < 0.2


def test_reinstruct_reclusters_by_the_new_facet():
    agent = fitted([{"action": "reinstruct", "instruction": "Cluster by mood."}])
    reply = agent.chat("Cluster them by mood instead.")
    assert "3 -> 2" in reply
    from sklearn.metrics import v_measure_score

    assert agent.result_.k == 2 and v_measure_score(MOOD, agent.result_.cluster) > 0.9


def test_a_chat_keeps_only_the_notes_that_still_hold_for_its_clusters():
    """Clustered again by language, a run still noted that its old "que / para" was named by statistics."""
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": "Sky"},
                    {"action": "reinstruct", "instruction": "Cluster by mood."}])  # "undo" takes no model call
    old = next(n for n in agent.result_.names if n.lower() == "weather")
    agent.state_["notes"] = [f'"{old}" is named by statistics: the model gave no valid name', "the budget ran out"]
    agent.chat(f'Rename "{old}" to "Sky".')
    assert agent.result_.run["notes"] == ["the budget ran out"]
    agent.chat("Cluster them by mood instead.")
    assert "the budget ran out" not in agent.result_.run["notes"]  # the new run's own notes
    agent.chat("undo")
    assert agent.result_.run["notes"] == ["the budget ran out"]


@pytest.mark.parametrize("quiet", [False, True])
def test_a_command_line_turn_that_clusters_again_shows_its_progress(tmp_path, capsys, monkeypatch, quiet):
    from clusteragent.cli import main

    model = chat_model([{"action": "reinstruct", "instruction": "Cluster by mood."}])
    out = tmp_path / "run"
    ClusterAgent(model=model, progress=False, max_model_calls=60).fit(
        TEXTS, instruction="Cluster by topic.", out_dir=out).result_.write(out)
    monkeypatch.setattr(ClusterAgent, "chat_model", lambda self: model)
    monkeypatch.delenv("CLUSTERAGENT_PROGRESS")  # the tests' quiet default, which a user does not have
    capsys.readouterr()
    assert main(["refine", str(out), "Cluster them by mood instead.", *(["--quiet"] if quiet else [])]) == 0
    err = capsys.readouterr().err
    assert ("clusteragent: understanding the instruction" in err) is not quiet, err


def test_a_reinstruct_turn_counts_and_traces_the_model_calls_of_its_new_run(tmp_path):
    agent = ClusterAgent(model=chat_model([{"action": "reinstruct", "instruction": "Cluster by mood."}]),
                         progress=False, max_model_calls=60)
    out = tmp_path / "run"
    agent.fit(TEXTS, instruction="Cluster by topic.", out_dir=out).result_.write(out)
    rows = len((out / "trace.jsonl").read_text().splitlines())
    agent.refine_session().turn_and_write("Cluster them by mood instead.", out)
    turn = json.loads((out / "run.json").read_text())["refinements"][-1]
    added = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()[rows:]]
    steps = [row["step"] for row in added]
    assert steps[:2] == ["refine", "refine"] and "understand" in steps and all(row["turn"] == 1 for row in added)
    assert turn["action"] == "reinstruct" and turn["model_calls"] == len(added) > 2
    agent.refine_session().turn_and_write(None, out, undo=True)  # no model call
    assert json.loads((out / "run.json").read_text())["refinements"][-1]["model_calls"] == 0


def test_fewer_clusters_merges_the_closest():
    agent = fitted([{"action": "granularity", "direction": "fewer"}])
    before = set(agent.result_.names)
    agent.chat("Fewer, broader clusters please.")
    assert agent.result_.k == 2 and sum(sizes(agent).values()) == len(TEXTS)
    # the merged cluster is named as a merge asked for by name is: broader than either, not after one of them
    merged = [c for c in agent.result_.clusters if c["name"] not in before]
    assert len(merged) == 1 and merged[0]["named_by"] == "model"


def test_a_number_of_clusters_in_the_message_is_what_granularity_makes():
    agent = fitted([{"action": "granularity", "direction": "more"}] * 3)
    assert agent.result_.k == 3
    reply = agent.chat("Make it 2 clusters.")  # the model's direction is ignored: the number rules
    assert agent.result_.k == 2 and sum(sizes(agent).values()) == len(TEXTS), reply
    reply = agent.chat("I want 2 clusters.")
    assert "There are 2 clusters already" in reply and agent.result_.k == 2, reply
    reply = agent.chat("Now make it four clusters.")
    assert agent.result_.k == 4 and sum(sizes(agent).values()) == len(TEXTS), reply
    assert len(agent.result_.ids) == len(set(agent.result_.ids))


def test_fewer_clusters_by_a_number_join_the_values_names_by_a_facet_other_than_subject_matter():
    model = chat_model([{"action": "granularity", "direction": "more"}] * 2, facet="mood")
    agent = ClusterAgent(model=model, progress=False, max_model_calls=80).fit(TEXTS, instruction="Cluster by mood.")
    reply = agent.chat("Make it 3 clusters.")
    assert agent.result_.k == 3, reply
    reply = agent.chat("Make it 2 clusters.")
    assert agent.result_.k == 2 and sum(sizes(agent).values()) == len(TEXTS), reply
    assert any(" and " in name for name in agent.result_.names), agent.result_.names  # "Angry and rain", not a topic


def test_a_number_in_a_new_instruction_reaches_the_new_run():
    agent = fitted([{"action": "reinstruct", "instruction": "Cluster by mood"}])
    reply = agent.chat("Cluster by mood, in two groups.")  # the model's instruction leaves the number out
    assert "Cluster by mood (two groups)" in reply and agent.result_.k == 2, reply


def test_values_listed_in_a_new_instruction_reach_the_new_run():
    agent = fitted([{"action": "reinstruct", "instruction": "Cluster by mood"}])
    reply = agent.chat("Cluster by mood instead: happy or angry.")
    assert "Cluster by mood (happy, angry)" in reply and sorted(agent.result_.names) == ["Angry", "Happy"], reply


def test_categories_given_for_the_first_instruction_do_not_bind_a_new_one():
    model = chat_model([{"action": "reinstruct", "instruction": "Cluster by mood"}])
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60,
                         categories=["weather", "football", "cooking"]).fit(TEXTS, instruction="Cluster by topic.")
    assert sorted(agent.result_.names) == ["Cooking", "Football", "Weather"]
    reply = agent.chat("Cluster by mood instead.")
    assert sorted(agent.result_.names) == ["Angry", "Happy"], reply


def test_questions_change_nothing_and_answer_from_the_data():
    agent = fitted([{"action": "explain", "ids": ["1"]}, {"action": "describe", "clusters": ["weather"]}])
    before = agent.result_.cluster.copy()
    reply = agent.chat("Why is text 1 in its cluster?")
    assert agent.result_.cluster_names()[0] in reply and "Text 1" in reply
    reply = agent.chat("What is in cluster 0?")
    assert agent.result_.clusters[0]["name"] == "Weather" and f"{agent.result_.clusters[0]['size']} of" in reply
    assert np.array_equal(agent.result_.cluster, before)


def test_a_cluster_asked_about_by_what_it_holds_is_the_one_holding_the_texts_nearest_that():
    agent = fitted([{"action": "describe", "clusters": ["cooking"]}, {"action": "describe", "clusters": ["cooking"]}])
    reply = agent.chat("What is in the cluster about storms?")  # the model chose "Cooking"
    assert reply.startswith('"Weather"'), reply
    reply = agent.chat('What is in "Cooking"?')  # a name the message writes stays the one described
    assert reply.startswith('"Cooking"'), reply


def test_an_explain_of_no_text_that_names_a_cluster_describes_it_and_a_search_looks_for_what_the_message_is_about():
    agent = fitted([{"action": "explain", "ids": []}, {"action": "explain", "ids": []},
                    {"action": "find", "description": "weather reports"}, {"action": "find", "description": "rain"}])
    reply = agent.chat("Show me some examples from Weather.")  # the model read an explain: no text, a cluster
    assert reply.startswith('"Weather" (') and " holds " in reply and "Typical texts" in reply, reply
    reply = agent.chat("What are the clusters?")  # no text, no cluster: a question for the overview
    assert reply.startswith(f"{agent.result_.k} clusters hold the {len(TEXTS)} texts: "), reply
    reply = agent.chat("Which texts talk about the storm?")  # not the question's words: what it asks about
    assert reply.startswith('Of the 20 texts nearest "the storm":'), reply
    reply = agent.chat("Which texts mention snow?")
    assert reply.startswith('Of the 20 texts nearest "snow":'), reply


def test_help_and_a_request_for_the_clusters_get_the_overview_whatever_question_the_model_read():
    """The small model read "help" and "Show me the clusters." as explaining a text, and answered "Give the id of
    the text to explain"; a request for one cluster or for texts about something is still not an overview."""
    from clusteragent import refine_questions

    agent = fitted([{"action": "explain", "ids": []}] * 5)
    overview = f"{agent.result_.k} clusters hold the {len(TEXTS)} texts: "
    for message in ("help", "Show me the clusters.", "List all the groups", "list the clusters please"):
        reply = agent.chat(message)
        assert reply.startswith(overview) and reply.endswith(refine_questions.CAN_DO), (message, reply)
    reply = agent.chat("Show me the clusters about storms.")
    assert reply == "Nothing changed: Give the id of the text to explain, or quote it.", reply


def test_a_text_id_the_message_writes_is_explained_where_the_model_gave_a_cluster_name_for_it():
    agent = fitted([{"action": "explain", "ids": ["Weather"]}])
    reply = agent.chat("Why is 17 in Weather?")
    assert reply.startswith("Text 17 (") and f'is in "{agent.result_.cluster_names()[16]}"' in reply, reply


def test_a_question_no_operation_takes_is_answered_with_an_overview_and_anything_else_with_what_the_chat_can_do():
    from clusteragent.refine_questions import overview_for

    agent = fitted([{"action": "none"}, {"action": "none"}, {"action": "none"}])
    before = agent.result_.cluster.copy()
    reply = agent.chat("How many clusters are there?")
    by_size = sorted([c for c in agent.result_.clusters if "children" not in c], key=lambda c: -c["size"])
    listed = ", ".join(f'"{c["name"]}" ({c["size"]})' for c in by_size)  # few clusters: each once, largest first
    assert reply == f"{agent.result_.k} clusters hold the {len(TEXTS)} texts: {listed}.", reply
    reply = agent.chat("What is in here?")  # not a question of sizes: what the chat can do follows
    assert reply.startswith(f"{agent.result_.k} clusters hold the {len(TEXTS)} texts: {listed}. I can merge"), reply
    reply = agent.chat("Delete the football cluster.")
    assert reply.startswith("Nothing changed: I can merge"), reply
    assert np.array_equal(agent.result_.cluster, before)
    assert overview_for("Find the smallest cluster.") is overview_for("Which one is biggest?") is not None


def test_an_overview_of_many_clusters_names_the_largest_and_the_smallest_and_of_one_says_one():
    from types import SimpleNamespace

    from clusteragent.refine_questions import overview
    from clusteragent.tools import taxonomy as tx

    tax = tx.Taxonomy([tx.Cluster(id=i, name=f"C{i}") for i in range(11)], next_id=11)
    assignment = np.repeat(np.arange(11), [9, 2, 8, 3, 7, 4, 6, 5, 5, 5, 5])
    turn = SimpleNamespace(tax=tax, assignment=assignment, tops=[], asked_as="Which are the largest?")
    assert overview(turn, None).text == ('11 clusters hold the 59 texts; the largest: "C0" (9), "C2" (8), "C4" (7); '
                                          'the smallest: "C1" (2), "C3" (3), "C5" (4).')
    turn.tax, turn.assignment = tx.Taxonomy(tax.clusters[:8], next_id=8), assignment[assignment < 8]
    assert overview(turn, None).text.startswith('8 clusters hold the 44 texts: "C0" (9), "C2" (8), "C4" (7), "C6" (6), ')
    one = SimpleNamespace(tax=tx.Taxonomy([tx.Cluster(id=0, name="General")], next_id=1), assignment=np.zeros(1, int),
                          tops=[], asked_as="How many clusters are there?")
    assert overview(one, None).text == '1 cluster holds the 1 text: "General" (1).'


def test_an_undo_the_message_does_not_ask_for_changes_nothing():
    from clusteragent.refine_names import operation_asked

    agent = fitted([{"action": "merge", "clusters": ["weather", "cooking"], "new_name": "home"}, {"action": "undo"}])
    agent.chat('Merge "weather" and "cooking" into one called home.')
    merged = agent.result_.names
    reply = agent.chat("Forget the football cluster.")  # the model read an undo
    assert reply.startswith("Nothing changed") and agent.result_.names == merged, reply
    assert [operation_asked(m, "undo") for m in ("Go back to how it was.", "Revert that.", "Oops, undo")] == ["undo"] * 3
    assert operation_asked("Remove the last change.", "undo") == "undo"  # the model's English for "Deshaz el último cambio."
    assert operation_asked("Which clusters are the smallest?", "find") == "none"  # for the overview
    assert [operation_asked(m, "find") for m in ("Which cluster is the largest?", "Find the smallest cluster.")] == [
        "none", "none"]
    assert operation_asked("How many clusters are about travel?", "explain") == "none"
    assert operation_asked("Which cluster holds the smallest phones?", "find") == "find"
    assert [operation_asked(m, "find") for m in ("Which are the largest?", "Which one is biggest?")] == ["none", "none"]
    assert operation_asked("What are the largest companies mentioned?", "find") == "find"


def translating(decisions, english_text):
    """A fitted agent whose scripted model takes `decisions` and writes any message in English as `english_text`,
    and that model."""
    base = chat_model(decisions).script

    def answer(messages, kwargs):
        if request_schema(kwargs)[0] == "InEnglish":
            return json.dumps({"instruction": english_text})
        return base(messages, kwargs)

    english = ScriptedChatModel(script=answer)
    return ClusterAgent(model=english, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic."), english


def test_a_message_in_another_language_is_checked_in_the_models_english_and_an_english_one_asks_nothing():
    # the model read a how-many question as a search; the English of it asks how many texts a cluster holds
    agent, english = translating([{"action": "find", "clusters": ["weather"]}] * 2, "How many texts are in Weather?")
    reply = agent.chat("Combien de textes y a-t-il dans le groupe Weather ?")
    assert reply.startswith('"Weather" (') and " holds " in reply, reply
    asked = [request_schema(c["kwargs"])[0] for c in english.calls]
    assert asked.count("InEnglish") == 1
    agent.chat("How many texts are in Weather?")
    assert [request_schema(c["kwargs"])[0] for c in english.calls].count("InEnglish") == 1


def test_an_undo_in_a_short_message_in_another_language_is_read_in_the_models_english():
    """ "Annule la dernière modification." reads as English at 0.31, so the turn began without a translation
    and the undo the model read was refused; an English message the model misreads as an undo costs no call."""
    agent, english = translating([{"action": "merge", "clusters": ["weather", "cooking"], "new_name": "home"},
                                  {"action": "undo"}], "Cancel the last modification.")
    before = agent.result_.names
    agent.chat('Merge "weather" and "cooking" into one called home.')
    merged = agent.result_.names
    reply = agent.chat("Forget the football cluster.")  # read as an undo; English, refused without a call
    assert reply.startswith("Nothing changed") and agent.result_.names == merged, reply
    assert not any(request_schema(c["kwargs"])[0] == "InEnglish" for c in english.calls)
    reply = agent.chat("Annule la dernière modification.")
    assert agent.result_.names == before, reply
    assert [request_schema(c["kwargs"])[0] for c in english.calls].count("InEnglish") == 1


def test_a_text_quoted_in_the_message_is_explained_without_its_id():
    agent = fitted([{"action": "explain", "ids": []}] * 3)
    text = TEXTS[7]
    reply = agent.chat(f'Why is "{text[:-1].upper()}" in "weather"?')  # most of the text, in other case
    cluster = agent.result_.cluster_names()[7]
    assert reply.startswith(f"Text {agent.result_.ids[7]} (") and f'is in "{cluster}"' in reply, reply
    reply = agent.chat('Why is "the snow on the roads" in "weather"?')
    holding = sum("the snow on the roads" in t for t in TEXTS)
    assert reply.startswith(f"{holding} texts hold what the message quotes; the first 3: Text "), reply
    reply = agent.chat('Why is "no such words here" in "weather"?')
    assert reply.startswith("Nothing changed") and 'No text holds "no such words here"' in reply


def test_replies_word_a_rule_as_the_runs_outputs_do():
    chat = chat_model([{"action": "describe", "clusters": ["weather"]}, {"action": "explain", "ids": ["1"]},
                       {"action": "rename", "clusters": ["weather"], "new_name": "Sky", "description": ""}])
    run_model = chat.script

    def answer(messages, kwargs):  # the model calls the texts "messages", as the instruction does
        reply = run_model(messages, kwargs)
        if request_schema(kwargs)[0] in ("FacetReading", "Understanding"):
            return json.dumps({**json.loads(reply), "texts_are": "messages"})
        return reply

    chat.script = answer
    agent = ClusterAgent(model=chat, progress=False, max_model_calls=60).fit(
        TEXTS, instruction="Cluster these messages by topic.")
    weather = next(c for c in agent.result_.clusters if c["name"] == "Weather")
    assert weather["description"].startswith("Messages about")
    assert f'"Weather" ({weather["description"]})' in agent.chat('What is in "Weather"?')
    assert "(Messages about" in agent.chat("Why is text 1 in its cluster?")
    assert 'Its rule is unchanged: "Messages about' in agent.chat('Rename "Weather" to "Sky".')


@pytest.mark.parametrize("argument", ["chocolate cake and bread", "Desserts and stuff"])
def test_find_says_which_clusters_hold_the_texts_nearest_a_description(argument):
    # "Desserts and stuff" is not in the message: the model's paraphrase gives way to the message's words
    agent = fitted([{"action": "find", "description": argument}])
    before = agent.result_.cluster.copy()
    reply = agent.chat("Which cluster has the texts about chocolate cake and bread?")
    listed = reply.split(": ", 1)[1]
    assert listed.startswith('"Cooking" (') and ("cake" in reply.split("The nearest:")[1]), reply
    shown = re.findall(r"\[(\w+)\] [^;]*? \(in \"([^\"]+)\"\)", reply.split("The nearest:")[1])
    name = {c["cluster"]: c["name"] for c in agent.result_.clusters}
    ids = [str(i) for i in agent.result_.ids]
    assert len(shown) == 3 and all(name[agent.result_.cluster[ids.index(i)]] == c for i, c in shown), reply
    assert np.array_equal(agent.result_.cluster, before) and "k:" not in reply


def test_find_looks_for_texts_like_the_one_the_message_quotes():
    agent = fitted([{"action": "find", "description": "Which cluster has texts like it?"}])
    reply = agent.chat("Which cluster has texts like 'the oven burnt my bread'?")
    assert reply.startswith('Of the 20 texts nearest "the oven burnt my bread": "Cooking"'), reply


@pytest.mark.parametrize("decision,message,expected", [
    ({"action": "merge", "clusters": ["weather", "cooking"]}, 'Merge "weather" and "gardening".', 'no cluster "gardening"'),
    ({"action": "merge", "clusters": ["weather", "(not in the list)"]}, "Merge weather and nonsense.",
     "not in the list"),
    ({"action": "merge", "clusters": ["weather", "(not in the list)"]}, 'Merge weather and "gardening".',
     'no cluster "gardening"'),
    ({"action": "undo"}, "undo", "nothing to undo"),
    ({"action": "explain", "ids": ["999999"]}, "Why is text 999999 here?", "no text has the id"),
    ({"action": "none", "reason": "a poem"}, "Write me a poem.", "i can merge"),
])
def test_requests_that_cannot_be_done_change_nothing(decision, message, expected):
    agent = fitted([decision])
    before = (agent.result_.names, agent.result_.cluster.copy())
    reply = agent.chat(message)
    assert reply.lower().startswith("nothing changed") and expected in reply.lower()
    assert agent.result_.names == before[0] and np.array_equal(agent.result_.cluster, before[1])


def test_split_of_a_one_text_cluster_is_refused():
    weather_ids = [str(i + 1) for i in np.flatnonzero(TOPIC == "weather")]
    agent = fitted([{"action": "move", "clusters": ["cooking"], "ids": weather_ids[1:]},
                    {"action": "split", "clusters": ["weather"]}])
    agent.chat(f"Move texts {', '.join(weather_ids[1:])} to cooking.")
    assert sizes(agent)["Weather"] == 1
    before = agent.result_.cluster.copy()
    reply = agent.chat('Split "weather" in two.')
    assert reply.startswith("Nothing changed") and "has 1 text;" in reply and "at least 4" in reply
    assert np.array_equal(agent.result_.cluster, before)


def test_a_second_session_sees_the_first_ones_changes(tmp_path):
    agent = ClusterAgent(model=chat_model([]), progress=False, max_model_calls=60)
    agent.fit(TEXTS, instruction="Cluster by topic.", out_dir=tmp_path)
    k = agent.result_.k
    merge = chat_model([{"action": "merge", "clusters": ["weather", "cooking"]}])
    first = ClusterAgent.load(tmp_path, model=merge).refine_session()
    first.chat('Merge "weather" and "cooking".')
    del first
    second = ClusterAgent.load(tmp_path, model=chat_model([{"action": "undo"}])).refine_session()
    assert len(second.state["taxonomy"]) == k - 1 and len(second.state["turns"]) == 1
    second.chat("undo")
    assert len(ClusterAgent.load(tmp_path, model=chat_model([])).refine_session().state["taxonomy"]) == k


def test_ids_the_message_does_not_contain_are_ignored():
    agent = fitted([{"action": "move", "clusters": ["cooking"], "ids": ["1", "2", "3", "4"]}])
    reply = agent.chat("Text 2 belongs to cooking, and so does 41.")
    assert "Moved 1 text into" in reply  # text 2 (weather) moves; 1, 3 and 4 were not asked about


def test_quoted_names_are_found():
    assert quoted('Merge the clusters "A b" and \'C\' into “D”.') == ["A b", "C", "D"]
    assert quoted("don't split it") == []


@pytest.mark.parametrize("odd", ['rain / "storms" 2', "2019 / horrible", "it's 3"])
def test_a_cluster_is_found_by_its_exact_quoted_name_whatever_its_characters(odd):
    agent = fitted([{"action": "rename", "clusters": ["weather"], "new_name": odd},
                    {"action": "merge", "clusters": [NOT_LISTED, NOT_LISTED]}])
    assert "Renamed" in agent.chat(f"Rename the weather cluster to {odd}.")
    named = odd[:1].upper() + odd[1:]  # as the message writes it, starting with a capital
    assert named in agent.result_.names
    reply = agent.chat(f'Merge the clusters "{named}" and "football" into one.')
    assert reply.startswith("Merged"), reply
    assert agent.result_.k == 2 and "Cooking" in agent.result_.names
    sizes = {c["name"]: c["size"] for c in agent.result_.clusters}
    merged = next(name for name in sizes if name != "Cooking")  # named again by the model
    assert sizes[merged] == int((TOPIC != "cooking").sum())


def test_more_clusters_than_a_turn_can_make_says_so_and_why():
    agent = fitted([{"action": "granularity", "direction": "more"}])
    reply = agent.chat("Make it 30 clusters.")  # three clusters of 40 texts, each split in at most SPLIT_PARTS
    assert agent.result_.k == 3 * SPLIT_PARTS < 30 and sum(sizes(agent).values()) == len(TEXTS)
    assert f"{agent.result_.k} clusters, fewer than asked. A cluster is split into at most" in reply, reply


def test_splits_the_turns_budget_cannot_pay_for_are_refused_once_in_the_reply(monkeypatch):
    import dataclasses

    import clusteragent.refine
    from clusteragent.refine_ops import SPLIT_COST
    from clusteragent.refine_turn import RefineContext

    @dataclasses.dataclass
    class OneSplitTurn(RefineContext):  # a turn that pays for one split: the other two are refused alike
        max_calls_per_turn: int = SPLIT_COST
    monkeypatch.setattr(clusteragent.refine, "RefineContext", OneSplitTurn)
    agent = fitted([{"action": "granularity", "direction": "more"}])
    reply = agent.chat("Make it 9 clusters.")
    assert 3 < agent.result_.k < 9 and sum(sizes(agent).values()) == len(TEXTS)
    assert reply.count("The model budget is spent") == 1, reply


SIGNS = {"weather": "storm", "football": "match", "cooking": "oven"}  # words that describe a topic, not its name


def topic_named(text, description):
    return SIGNS[TRUTH[text][0]] in description


@pytest.mark.parametrize("message,chosen", [("Merge everything about storms and matches into one cluster.",
                                             [NOT_LISTED, NOT_LISTED]),
                                            ("Merge the clusters about storms and matches.", ["cooking", "weather"])])
def test_a_merge_that_describes_the_clusters_merges_every_one_the_model_checks_fits(message, chosen):
    """The model's two choices count only where the message writes them: "cooking" is not merged."""
    model = chat_model([{"action": "merge", "clusters": chosen, "description": "storms and matches"}],
                       fits=topic_named)
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    reply = agent.chat(message)
    assert reply.startswith("Merged") and "3 -> 2" in reply, reply
    by_size = sizes(agent)
    assert by_size["Cooking"] == int((TOPIC == "cooking").sum()) and len(by_size) == 2
    assert sum(by_size.values()) == len(TEXTS)


def test_a_described_merge_that_counts_its_clusters_merges_that_many_of_those_that_fit_the_nearest_first():
    from clusteragent.refine_parts import clusters_counted

    assert clusters_counted("Merge the two clusters about cars.") == 2
    assert clusters_counted("Merge both car groups.") == 2 and clusters_counted('Merge "Top 3 clusters" and X.') == 0
    assert clusters_counted("Merge everything about cars.") == 0
    model = chat_model([{"action": "merge", "clusters": [NOT_LISTED, NOT_LISTED], "description": "storms and matches"}],
                       fits=lambda text, description: True)  # the model says every cluster fits
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    reply = agent.chat("Merge the two clusters about storms and matches.")
    assert reply.startswith("Merged") and "3 -> 2" in reply and "of the 3 that fit, the 2 nearest it" in reply, reply
    assert sizes(agent)["Cooking"] == int((TOPIC == "cooking").sum()) and sum(sizes(agent).values()) == len(TEXTS)


def test_a_merge_whose_description_fits_one_cluster_changes_nothing_and_says_which():
    model = chat_model([{"action": "merge", "clusters": [NOT_LISTED, NOT_LISTED], "description": "the oven"}],
                       fits=topic_named)
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    before = agent.result_
    reply = agent.chat("Merge everything about the oven into one cluster.")
    assert 'only "Cooking" fits it' in reply and reply.startswith("Nothing changed"), reply
    assert np.array_equal(agent.result_.cluster, before.cluster)


def test_a_merge_by_description_keeps_a_cluster_the_message_names_and_adds_those_the_description_fits():
    model = chat_model([{"action": "merge", "clusters": ["Football", NOT_LISTED], "description": "storms"}],
                       fits=topic_named)
    agent = ClusterAgent(model=model, progress=False, max_model_calls=60).fit(TEXTS, instruction="Cluster by topic.")
    reply = agent.chat("Merge Football with the clusters about storms.")
    assert reply.startswith("Merged") and '"Football"' in reply and '"Weather"' in reply, reply
    assert sizes(agent)["Cooking"] == int((TOPIC == "cooking").sum()) and agent.result_.k == 2

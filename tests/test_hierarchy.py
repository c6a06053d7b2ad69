"""The top level over many clusters: grouping the leaves, naming the tops, keeping them consistent, outputs."""

import contextlib
import io
import json

import numpy as np
import pytest
from fakes import FakeOpenAIServer, ScriptedChatModel
from test_reliability import run_args, write_jsonl

from clusteragent.hierarchy import MAX_FLAT, build_tops, group_by_size, group_leaves, reconcile
from clusteragent.refine_names import NOT_LISTED
from clusteragent.state import AgentConfig, RunContext
from clusteragent.structured import StructuredLLM
from clusteragent.tools.taxonomy import Taxonomy
from clusteragent.wording import quoted_list


def themed_leaves(themes: int = 3, leaves_per_theme: int = 5, per_leaf: int = 12, dim: int = 48, seed: int = 0):
    """Unit vectors: `themes` far-apart directions, each with leaves close to it, each leaf's texts close to
    the leaf. Returns (vectors, assignment, theme of each leaf id)."""
    rng = np.random.default_rng(seed)
    theme_dirs = rng.normal(size=(themes, dim)) * 3
    leaf_dirs = np.repeat(theme_dirs, leaves_per_theme, axis=0) + rng.normal(size=(themes * leaves_per_theme, dim))
    n_leaves = len(leaf_dirs)
    vectors = np.repeat(leaf_dirs, per_leaf, axis=0) + 0.3 * rng.normal(size=(n_leaves * per_leaf, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return vectors, np.repeat(np.arange(n_leaves), per_leaf), np.repeat(np.arange(themes), leaves_per_theme)


def context(vectors, llm=None, calls=50):
    return RunContext(texts=[f"text {i} about theme words" for i in range(len(vectors))], llm=llm, embedder=None,
                      config=AgentConfig(max_model_calls=max(4, calls)), vectors=vectors)


def leaves(n: int) -> Taxonomy:
    return Taxonomy.from_specs([(f"leaf {i}", f"texts of leaf {i}") for i in range(n)])


@pytest.mark.parametrize("themes", [2, 3, 5])
def test_leaves_group_by_their_theme(themes):
    vectors, assignment, theme = themed_leaves(themes=themes, leaves_per_theme=4, seed=themes)
    groups = group_leaves(vectors, assignment, leaves(4 * themes).ids)
    assert len(groups) == themes
    assert all(len({int(theme[leaf]) for leaf in g}) == 1 for g in groups)


def test_the_top_count_is_judged_on_the_map_the_leaves_were_grouped_on():
    from clusteragent.hierarchy import run_leaf_groups

    vectors, assignment, _ = themed_leaves(themes=2, leaves_per_theme=6)
    ids = leaves(12).ids
    # A map where every leaf is a tight point of its own, all equally far apart: no grouping of leaves is
    # better than another there but the finest allowed (half the leaves) is the most cohesive.
    rng = np.random.default_rng(1)
    on_map = (np.eye(12)[assignment] * 10 + 0.01 * rng.normal(size=(len(assignment), 12))).astype(np.float32)
    assert len(group_leaves(vectors, assignment, ids)) == 2
    assert len(group_leaves(vectors, assignment, ids, grouped_on=on_map)) == 6
    ctx = context(vectors)
    ctx.views.meaning_map = on_map
    assert len(run_leaf_groups(ctx, assignment, ids)) == 6


def test_a_far_clump_and_everything_else_is_no_top_level():
    """A tight clump far from the rest gives "clump and rest" the best silhouette; no top cluster may hold
    more than half the texts, so the themes are the top level."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import silhouette_score

    from clusteragent.tools import taxonomy as tx

    rng = np.random.default_rng(0)
    themes = rng.normal(size=(3, 48)) * 1.5
    leaf_dirs = np.repeat(themes, 4, axis=0) + rng.normal(size=(12, 48)) * 0.5
    x = np.vstack([np.repeat(leaf_dirs, 12, axis=0) + 0.3 * rng.normal(size=(144, 48)),
                   rng.normal(size=48) * 10 + 0.01 * rng.normal(size=(12, 48))])  # leaf 12: the clump
    vectors = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    assignment = np.repeat(np.arange(13), 12)
    theme_of_leaf = np.array([0] * 4 + [1] * 4 + [2] * 4 + [3])
    centres = np.array([[0, 0], [2, 0], [0, 2], [400, 0]], dtype=np.float32)
    on_map = centres[theme_of_leaf[assignment]] + rng.normal(size=(156, 2)).astype(np.float32)
    tree = linkage(tx.centroids(vectors, assignment, list(range(13))), method="average", metric="cosine")
    silhouette = {t: silhouette_score(on_map, fcluster(tree, t=t, criterion="maxclust")[assignment])
                  for t in (2, 4)}
    assert silhouette[2] > silhouette[4]  # the best silhouette alone would cut at the clump
    groups = group_leaves(vectors, assignment, list(range(13)), grouped_on=on_map)
    assert sorted(map(sorted, groups)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12]]


def test_a_top_of_more_than_max_flat_clusters_is_grouped_again_on_its_own():
    """Three themes, one of 16 small clusters in two sub-themes: the best cut is the three themes, but a top
    of 16 clusters is as long a list as the level it shortens, so that theme is cut into its sub-themes while
    the other two themes stay as they are (a finer cut of everything would leave their clusters alone)."""
    rng = np.random.default_rng(0)
    themes = rng.normal(size=(3, 48)) * 3
    sub_themes = themes[0] + rng.normal(size=(2, 48)) * 1.2
    leaf_dirs = np.vstack([np.repeat(sub_themes, 8, axis=0) + rng.normal(size=(16, 48)) * 0.6,
                           np.repeat(themes[1:], 4, axis=0) + rng.normal(size=(8, 48))])
    assignment = np.repeat(np.arange(24), [4] * 16 + [12] * 8)
    x = leaf_dirs[assignment] + 0.3 * rng.normal(size=(len(assignment), 48))
    vectors = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    assert sorted(map(len, group_leaves(vectors, assignment, list(range(24)), count=3))) == [4, 4, 16]
    groups = group_leaves(vectors, assignment, list(range(24)))
    assert sorted(map(sorted, groups)) == [list(range(0, 8)), list(range(8, 16)), list(range(16, 20)),
                                           list(range(20, 24))]
    sizes = [int(np.isin(assignment, g).sum()) for g in groups]
    assert sizes == sorted(sizes, reverse=True)


def test_a_count_of_clusters_says_how_many_stand_under_top_clusters():
    from clusteragent.hierarchy import held_under

    tops = [{"id": 9, "children": [1, 2, 3]}, {"id": 4, "children": [4]}]
    assert held_under(tops, 4) == ", 3 of them under 1 top cluster"
    assert held_under(tops + [{"id": 10, "children": [5, 6]}], 6) == ", 5 of them under 2 top clusters"
    assert held_under(tops[1:], 4) == held_under([], 4) == ""
    assert held_under(tops[:1], 3) == ", all under 1 top cluster"


def test_grouping_to_a_users_count_puts_small_far_clusters_with_a_large_one():
    """Two large clusters and two of 3 texts far from everything: asked for 2 groups, each large cluster heads
    one (by linkage one far cluster of 3 texts would be a group of its own)."""
    directions = {0: [1, 0, 0], 1: [0.6, 0.8, 0], 2: [0, 0, 1], 3: [0, 0, -1]}
    sizes = {0: 100, 1: 100, 2: 3, 3: 3}
    rng = np.random.default_rng(0)
    assignment = np.repeat(list(sizes), list(sizes.values()))
    vectors = np.array([directions[c] for c in assignment]) + rng.normal(0, 0.01, (len(assignment), 3))
    groups = group_by_size(vectors, assignment, list(sizes), 2)
    assert sorted(min(g) for g in groups) == [0, 1] and sorted(c for g in groups for c in g) == [0, 1, 2, 3]
    assert min(sum(sizes[c] for c in g) for g in groups) >= 100
    linked = group_leaves(vectors, assignment, list(sizes), count=2)
    assert min(sum(sizes[c] for c in g) for g in linked) == 3  # why the count is not cut by linkage


def test_a_runs_leaves_are_grouped_once_per_partition_whatever_their_ids():
    from clusteragent.hierarchy import run_leaf_groups

    vectors, assignment, theme = themed_leaves()
    ctx = context(vectors)
    direct = {frozenset(g) for g in group_leaves(vectors, assignment, list(range(15)))}
    assert {frozenset(g) for g in run_leaf_groups(ctx, assignment, list(range(15)))} == direct
    renamed = (assignment * 7 + 100)  # the same partition under other ids, as after naming
    again = run_leaf_groups(ctx, renamed, [c * 7 + 100 for c in range(15)])
    assert {frozenset((c - 100) // 7 for c in g) for g in again} == direct and len(ctx.leaf_groups) == 1
    merged = np.where(assignment == 1, 0, assignment)  # another partition: grouped afresh
    run_leaf_groups(ctx, merged, list(range(15)))
    assert len(ctx.leaf_groups) == 2


def test_tops_are_named_by_the_model_with_new_ids_and_by_statistics_without_budget():
    vectors, assignment, theme = themed_leaves()
    tax = leaves(15)
    model = ScriptedChatModel(script=lambda messages, kwargs: json.dumps(
        {"name": f"Theme {len(model.calls)}", "description": "Texts of one theme."}))
    tops, grown, record = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax,
                                     assignment)
    assert record["levels"] == 2 and len(tops) == 3 and len(model.calls) == 3
    assert [t["id"] for t in tops] == [15, 16, 17] and grown.next_id == 18  # ids no leaf has
    assert sorted(c for t in tops for c in t["children"]) == list(range(15))
    assert {t["named_by"] for t in tops} == {"model"}
    assert "smaller groups: leaf" in str(model.calls[0]["messages"][-1].content)  # the model sees the parts
    tops, _, _ = build_tops(context(vectors), "Group by topic.", "topic", tax, assignment)
    assert {t["named_by"] for t in tops} == {"statistics"} and len({t["name"] for t in tops}) == 3


def test_few_clusters_keep_one_level():
    vectors, assignment, _ = themed_leaves(themes=3, leaves_per_theme=4)
    tops, tax, record = build_tops(context(vectors), "Group by topic.", "topic", leaves(12), assignment)
    assert tops == [] and record["levels"] == 1 and tax.next_id == 12 and MAX_FLAT == 12


def test_many_clusters_whose_every_grouping_has_a_top_of_most_texts_keep_one_level():
    """Two near-identical clusters with 56% of the texts between them sit in one top cluster at every count:
    no top level, and the run says why. Made lighter, they leave a balanced count and a top level."""
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(14, 48))
    dirs[1] = dirs[0] + 0.01 * rng.normal(size=48)
    for heavy, expected in ((130, 1), (12, 2)):
        sizes = [heavy, 20] + [10] * 12
        assignment = np.repeat(np.arange(14), sizes)
        x = dirs[assignment] + 0.05 * rng.normal(size=(len(assignment), 48))
        vectors = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        tops, tax, record = build_tops(context(vectors), "Group by topic.", "topic", leaves(14), assignment)
        assert record["levels"] == expected
        if expected == 1:
            assert tops == [] and tax.next_id == 14 and "more than half the texts" in record["why"]
        else:
            assert max(sum((assignment == c).sum() for c in t["children"]) for t in tops) * 2 <= len(assignment)


def test_reconcile_follows_merges_splits_and_new_leaves():
    vectors, assignment, theme = themed_leaves()
    tax = leaves(15)
    tops, tax, _ = build_tops(context(vectors), "Group by topic.", "topic", tax, assignment)
    # leaf 1 merged into leaf 0: it leaves its top
    merged = np.where(assignment == 1, 0, assignment)
    after = reconcile(tops, tax.without([1]), merged, vectors)
    assert 1 not in {c for t in after for c in t["children"]} and len(after) == 3
    # a new leaf made of leaf 7's texts joins leaf 7's top
    grown, new_id = tax.added("new leaf")
    split = np.where(assignment == 7, new_id, assignment)
    split[np.flatnonzero(assignment == 7)[:6]] = 7
    after = reconcile(tops, grown, split, vectors, before=assignment)
    top_of = {c: t["id"] for t in after for c in t["children"]}
    assert top_of[new_id] == top_of[7]
    # a top whose leaves are all gone goes
    gone = [c for c in tops[0]["children"]]
    emptied = np.where(np.isin(assignment, gone), tops[1]["children"][0], assignment)
    assert len(reconcile(tops, tax.without(gone), emptied, vectors)) == 2


def test_reconcile_leaves_a_cluster_that_stands_alone_where_it_stands():
    # Leaf 5 is a top of its own (a top of one cluster); any change to the leaves used to make it an orphan
    # that joined the nearest top, its own included: a top listing the same cluster twice.
    vectors, assignment, _ = themed_leaves(themes=2, leaves_per_theme=3)
    tax = leaves(6)
    tops = [{"id": 10, "name": "A", "description": "", "children": [0, 1, 2]},
            {"id": 11, "name": "B", "description": "", "children": [3, 4]},
            {"id": 12, "name": "Leaf 5", "description": "", "children": [5]}]
    merged = np.where(assignment == 1, 0, assignment)
    after = reconcile(tops, tax.without([1]), merged, vectors)
    assert [t["children"] for t in after] == [[0, 2], [3, 4], [5]]


def test_a_new_leaf_joins_a_top_only_where_no_farther_from_it_than_its_own_clusters_are_apart():
    """New texts of a kind no top covers stand alone at the top level; new texts amid a top's clusters join it."""
    vectors, assignment, theme = themed_leaves(themes=3, leaves_per_theme=4, seed=3)
    tax = leaves(12)
    tops = [{"id": 20 + t, "name": f"Theme {t}", "description": "", "children": [int(c) for c in np.flatnonzero(theme == t)]}
            for t in range(3)]
    rng = np.random.default_rng(0)
    far_kind = rng.normal(size=vectors.shape[1]) * 3  # a fourth theme, as far from the others as they are apart
    near_kind = vectors[assignment == 5].mean(axis=0)  # amid theme 1's clusters
    new = np.vstack([far_kind + 0.3 * rng.normal(size=(10, vectors.shape[1])),
                     near_kind + 0.05 * rng.normal(size=(10, vectors.shape[1]))])
    grown_vectors = np.vstack([vectors, new / np.linalg.norm(new, axis=1, keepdims=True)]).astype(np.float32)
    grown, far_id = tax.added("far")
    grown, near_id = grown.added("near")
    grown_assignment = np.concatenate([assignment, np.repeat([far_id, near_id], 10)])
    after = reconcile(tops, grown, grown_assignment, grown_vectors, before=assignment)
    top_of = {c: t["id"] for t in after for c in t["children"]}
    assert far_id not in top_of and top_of[near_id] == 21
    assert [t["children"] for t in after] == [[0, 1, 2, 3], [4, 5, 6, 7, near_id], [8, 9, 10, 11]]


def test_a_part_split_off_a_cluster_stays_in_the_top_its_texts_were_in():
    """Where a new leaf's texts were before the change decides its top, wherever its centroid lies."""
    vectors, assignment, theme = themed_leaves(themes=2, leaves_per_theme=3, seed=1)
    tax = leaves(6)
    # leaf 0 (theme 0) filed under theme 1's top, as a user may have moved it: its parts follow it there
    tops = [{"id": 10, "name": "A", "description": "", "children": [1, 2]},
            {"id": 11, "name": "B", "description": "", "children": [0, 3, 4, 5]}]
    grown, part = tax.added("part of leaf 0")
    split = assignment.copy()
    split[np.flatnonzero(assignment == 0)[:5]] = part
    top_of = {c: t["id"] for t in reconcile(tops, grown, split, vectors, before=assignment) for c in t["children"]}
    assert top_of[part] == 11


THEMES = {"weather": ["rain", "storm", "snow", "fog", "wind"], "sport": ["goal", "match", "tennis", "rugby", "golf"],
          "food": ["pasta", "bread", "soup", "cake", "rice"]}
MANY = [{"id": f"{w}-{i}", "text": f"a short note about the {w}, number {i}"}
        for words in THEMES.values() for w in words for i in range(8)]


@pytest.fixture(scope="module")
def two_level_run(tmp_path_factory):
    from clusteragent.cli import main

    tmp = tmp_path_factory.mktemp("hierarchy")
    printed = io.StringIO()
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main(run_args(write_jsonl(tmp / "in.jsonl", MANY), tmp / "out", "--k", "15")) == 0
    (tmp / "printed.txt").write_text(printed.getvalue())
    return tmp / "out"


@pytest.mark.local_server
def test_a_run_with_many_clusters_writes_both_levels(two_level_run):
    tmp_path = two_level_run.parent
    clusters = json.loads((tmp_path / "out" / "clusters.json").read_text())
    top_level = [c for c in clusters if "children" in c]
    leaves = [c for c in clusters if "children" not in c]
    leaf_level = [c for c in leaves if c["level"] == 2]
    assert len(leaves) == 15 and 2 <= len(top_level) <= 7 and all(c["level"] == 1 for c in top_level)
    tops = {t["cluster"]: t for t in top_level}
    assert all(c["parent"] in tops for c in leaf_level) and all(t["parent"] is None for t in top_level)
    assert all(c["parent"] is None for c in leaves if c["level"] == 1)  # a cluster no other joined: a top itself
    assert set(tops).isdisjoint(c["cluster"] for c in leaves)
    for t in top_level:
        assert len(t["children"]) > 1 and t["size"] == sum(c["size"] for c in leaf_level if c["parent"] == t["cluster"])
    held_here = f"{len(leaf_level)} of them" if len(leaf_level) < 15 else "all"
    held = f"15 clusters, {held_here} under {len(top_level)} top clusters, for {len(MANY)} texts"
    assert (tmp_path / "printed.txt").read_text().startswith(held)
    parent = {c["cluster"]: c["parent"] if c["parent"] is not None else c["cluster"] for c in leaves}
    names = {c["cluster"]: c["name"] for c in clusters}
    for line in (tmp_path / "out" / "assignments.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert r["top_cluster"] == parent[r["cluster"]] and r["top_cluster_name"] == names[r["top_cluster"]]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["levels"] == 2 and run["k"] == 15 and run["k_top"] == len(set(parent.values()))


def copy_and_first_cluster(run, to):
    """A copy of the run's folder to chat on, and the name of its first cluster."""
    import shutil

    out = shutil.copytree(run, to)
    return out, refined(out).refine_session().result().clusters[0]["name"]


def renamed_by_the_model(out, leaf: str, answer: dict, rule: str = ""):
    """The chat agent and its reply after asking for a better name for `leaf` (with `rule` after a colon), the
    model naming it `answer`."""
    agent = refined(out, {"action": "rename"}, {"cluster": leaf, "new_name": "", "description": rule}, answer)
    return agent, agent.chat(f'Give "{leaf}" a better name' + (f": {rule}" if rule else "."))


def refined(out, *answers):
    from clusteragent import ClusterAgent

    return ClusterAgent.load(out, model=ScriptedChatModel(script=[json.dumps(a) for a in answers]))


@pytest.mark.local_server
def test_rename_of_a_top_cluster_written_as_rename_x_to_y_takes_y(two_level_run, tmp_path):
    """The model chose one of the top's clusters and the top's present name; the top was named again."""
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    top = refined(out).refine_session().result().top_clusters[0]
    leaf = refined(out).refine_session().result().cluster_names()[top["children"][0]]
    agent = refined(out, {"action": "rename"}, {"cluster": leaf, "new_name": top["name"], "description": ""})
    reply = agent.chat(f"Rename {top['name']} to Business and technology.")
    assert agent.result_.top_clusters[0]["name"] == "Business and technology", reply
    assert leaf in agent.result_.names


@pytest.mark.parametrize("message, merged", [("Merge all the clusters of {top} into one.", True),
                                             ("Merge {top} and Hockey.", False)])  # a cluster no one has
def test_a_merge_of_all_the_clusters_of_a_top_cluster_makes_them_one(two_level_run, tmp_path, message, merged):
    """The model, asked which clusters "all the clusters of Sports" are, answered two not in the list."""
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    before = refined(out).refine_session().result()
    top = max(before.top_clusters, key=lambda t: len(t["children"]))
    agent = refined(out, {"action": "merge"}, {"clusters": ["(not in the list)", "(not in the list)"], "new_name": ""})
    reply = agent.chat(message.format(top=top["name"]))
    after = agent.result_
    if merged:
        assert after.k == before.k - len(top["children"]) + 1 and top["name"] in after.names, reply
        assert len(after.top_clusters) == len(before.top_clusters) - 1
    else:
        assert reply.startswith("Nothing changed: A cluster you named is not in the list") and after.k == before.k


def test_a_merge_named_as_the_top_cluster_over_it_says_how_to_merge_them_all(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    top = max(result.top_clusters, key=lambda t: len(t["children"]))
    first, second = (result.cluster_names()[c] for c in top["children"][:2])
    agent = refined(out, {"action": "merge"}, {"clusters": [first, second], "new_name": top["name"]})
    reply = agent.chat(f'Merge "{first}" and "{second}" into one called {top["name"]}.')
    said = reply.lower()  # the name as the message gives it, in sentence case
    assert said.startswith(f'nothing changed: there is already a cluster "{top["name"].lower()}", the top cluster over "')
    assert said.endswith(f'merge all of them: "merge all the clusters of {top["name"].lower()} into one."'), reply
    assert agent.result_.k == result.k


def test_chat_merges_renames_and_splits_top_clusters_and_undo_restores_them(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    first, second = result.top_clusters[0], result.top_clusters[1]
    leaves = result.cluster.copy()
    # no name in the message: the model's argument is its own, and the merged top is named as a run names one
    agent = refined(out, {"action": "merge"}, {"clusters": [first["name"], second["name"]], "new_name": "Both Of Them"},
                    {"name": "Everyday errands", "description": "Texts about errands of every day.",
                     "second_name": "Daily errands"})
    reply = agent.chat(f'Merge "{first["name"]}" and "{second["name"]}".')
    assert "Merged the top clusters" in reply and '"Everyday errands"' in reply, reply
    tops = len(result.top_clusters)
    assert f"k: {result.k} -> {result.k}; top clusters: {tops} -> {tops - 1}; 0 texts changed" in reply, reply
    after = agent.result_
    assert len(after.top_clusters) == len(result.top_clusters) - 1 and (after.cluster == leaves).all()
    kept = next(t for t in after.top_clusters if set(first["children"]) <= set(t["children"]))
    assert set(second["children"]) <= set(kept["children"]) and kept["cluster"] in (first["cluster"], second["cluster"])
    assert (kept["name"], kept["description"]) == ("Everyday errands", "Texts about errands of every day.")
    agent = refined(out, {"action": "rename"}, {"cluster": kept["name"], "new_name": "Everyday life", "description": ""})
    reply = agent.chat(f'Rename "{kept["name"]}" to "Everyday life".')
    assert "top clusters:" not in reply, reply  # as many as before
    assert "Everyday life" in [t["name"] for t in agent.result_.top_clusters]
    agent = refined(out, {"action": "split"}, {"cluster": "Everyday life", "n": 2},
                    {"name": "Part one", "description": "One part."}, {"name": "Part two", "description": "Other."})
    reply = agent.chat('Split "Everyday life" in two.')
    assert "Split the top cluster" in reply and f"top clusters: {tops - 1} -> {tops};" in reply, reply
    split = agent.result_.top_clusters
    assert len(split) == len(result.top_clusters) and (agent.result_.cluster == leaves).all()
    assert len({t["cluster"] for t in split}) == len(split) and max(t["cluster"] for t in split) >= max(
        t["cluster"] for t in result.top_clusters)  # the new part has a new id
    agent = refined(out, {"action": "undo"})
    agent.chat("undo")
    assert "Everyday life" in [t["name"] for t in agent.result_.top_clusters]


@pytest.mark.local_server
@pytest.mark.parametrize("asked", ["put", "merge"])
def test_a_cluster_put_under_a_top_cluster_moves_no_text_and_undo_takes_it_back(two_level_run, tmp_path, asked):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    top = result.top_clusters[0]
    leaf = next(c for c in result.clusters if c["parent"] not in (None, top["cluster"]))  # under another top
    if asked == "put":  # the small model read a move to the cluster named first, its ids the message's full stop
        agent = refined(out, {"action": "move"}, {"cluster": leaf["name"], "ids": ["."], "description": ""})
        reply = agent.chat(f'Put "{leaf["name"]}" under "{top["name"]}".')
    else:
        agent = refined(out, {"action": "merge"}, {"clusters": [leaf["name"], top["name"]], "new_name": ""})
        reply = agent.chat(f'Merge "{leaf["name"]}" and "{top["name"]}".')
    after = agent.result_
    assert f'under the top cluster "{top["name"]}"' in reply and (after.cluster == result.cluster).all(), reply
    assert next(c for c in after.clusters if c["cluster"] == leaf["cluster"])["parent"] == top["cluster"]
    assert leaf["cluster"] in next(t for t in after.top_clusters if t["cluster"] == top["cluster"])["children"]
    assert all(leaf["cluster"] not in t["children"] for t in after.top_clusters if t["cluster"] != top["cluster"])
    agent = refined(out, {"action": "undo"})
    agent.chat("undo")
    assert next(c for c in agent.result_.clusters if c["cluster"] == leaf["cluster"])["parent"] == leaf["parent"]


@pytest.mark.local_server
def test_a_cluster_taken_out_of_its_top_cluster_stands_on_its_own_and_no_text_moves(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    top = next(t for t in result.top_clusters if len(t["children"]) > 2)  # one cluster out still leaves a top
    leaf = next(c for c in result.clusters if c["parent"] == top["cluster"])
    # the small model read a move into the cluster named first
    agent = refined(out, {"action": "move"}, {"cluster": leaf["name"], "ids": [], "description": ""})
    reply = agent.chat(f'Take "{leaf["name"]}" out of "{top["name"]}".')
    after = agent.result_
    assert "at the top level on its own" in reply and (after.cluster == result.cluster).all(), reply
    moved = next(c for c in after.clusters if c["cluster"] == leaf["cluster"])
    assert moved["parent"] is None and moved["level"] == 1
    kept = next(t for t in after.top_clusters if t["cluster"] == top["cluster"])
    assert sorted(kept["children"]) == sorted(set(top["children"]) - {leaf["cluster"]})
    agent = refined(out, {"action": "move"}, {"cluster": leaf["name"], "ids": [], "description": ""})
    assert "at the top level already" in agent.chat(f'Move "{leaf["name"]}" to the top level.')
    agent = refined(out, {"action": "undo"})
    agent.chat("undo")
    assert next(c for c in agent.result_.clusters if c["cluster"] == leaf["cluster"])["parent"] == top["cluster"]
    # all but one taken out: the top stands as its one cluster, and a move to it by its old name moves nothing
    *out_names, last = [c["name"] for c in result.clusters if c["parent"] == top["cluster"]]
    agent = refined(out, {"action": "move"}, {"cluster": out_names[0], "ids": [], "description": ""})
    reply = agent.chat(" ".join(f'Take "{n}"' for n in out_names[:1]) + "".join(f' and "{n}"' for n in out_names[1:])
                       + f' out of "{top["name"]}".')
    assert f'"{top["name"]}" holds only "{last}" now' in reply, reply
    agent = refined(out, {"action": "move"}, {"cluster": out_names[0], "ids": [], "description": "texts"})
    reply = agent.chat(f'Put "{out_names[0]}" under "{top["name"]}".')
    assert reply.startswith("Nothing changed") and "holds only" in reply and (agent.result_.cluster == result.cluster).all()


@pytest.mark.local_server
def test_merging_every_cluster_of_a_top_cluster_gives_the_top_with_its_name_and_no_model_call(two_level_run,
                                                                                           tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    top = min(result.top_clusters, key=lambda t: len(t["children"]))
    first, second, *rest = [c["name"] for c in result.clusters if c["parent"] == top["cluster"]]
    for name in rest:  # leave the top two clusters
        agent = refined(out, {"action": "move"}, {"cluster": name, "ids": [], "description": ""})
        assert "at the top level on its own" in agent.chat(f'Take "{name}" out of "{top["name"]}".')
    agent = refined(out, {"action": "merge"}, {"clusters": [first, second], "new_name": ""})
    reply = agent.chat(f'Merge "{first}" and "{second}".')
    assert f'into "{top["name"]}"' in reply, reply
    assert len(agent.chat_model().calls) == 2  # the message read; no call for the name
    merged = next(c for c in agent.result_.clusters if c["name"] == top["name"])
    assert merged["description"] == top["description"] and merged["parent"] is None
    assert top["name"] not in [t["name"] for t in agent.result_.top_clusters]


@pytest.mark.local_server
def test_a_merge_of_a_top_cluster_with_every_cluster_it_holds_makes_it_one_cluster(two_level_run, tmp_path):
    """'Merge Personal growth, Self help and Personal advice.', the top and its two clusters: the model answered
    two clusters not in the list, and the run put "Self help" under the top it stood under ("Nothing changed")."""
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    top = min(result.top_clusters, key=lambda t: len(t["children"]))
    held = [c["name"] for c in result.clusters if c["parent"] == top["cluster"]]
    agent = refined(out, {"action": "merge"}, {"clusters": [NOT_LISTED, NOT_LISTED], "new_name": ""})
    reply = agent.chat(f'Merge "{top["name"]}", ' + ", ".join(f'"{n}"' for n in held) + ".")
    assert reply.startswith(f"Merged {quoted_list(held)} into \"{top['name']}\""), reply
    merged = next(c for c in agent.result_.clusters if c["name"] == top["name"])
    assert merged["size"] == top["size"] and len(agent.result_.clusters) == len(result.clusters) - len(held) + 1


@pytest.mark.local_server
def test_a_merge_of_three_clusters_merges_the_three_where_the_model_answers_two(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    three = [c["name"] for c in result.clusters[:3]]
    agent = refined(out, {"action": "merge"}, {"clusters": three[:2], "new_name": "Odds and ends"},
                    {"name": "Assorted", "description": "Texts of three kinds.", "second_name": "Mixed"})  # its rule
    reply = agent.chat(f'Merge "{three[0]}", "{three[1]}" and "{three[2]}" into "Odds and ends".')
    assert reply.startswith(f'Merged {quoted_list(three)} into "Odds and ends"'), reply
    merged = next(c for c in agent.result_.clusters if c["name"] == "Odds and ends")
    assert merged["size"] == sum(c["size"] for c in result.clusters[:3])


@pytest.mark.local_server
def test_a_chat_turn_on_a_run_folder_adds_its_model_decisions_to_the_trace(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    ran = (out / "trace.jsonl").read_text().splitlines()
    leaf = refined(out).refine_session().result().clusters[0]["name"]
    session = refined(out, {"action": "rename"}, {"cluster": leaf, "new_name": "Odds and ends",
                                                  "description": ""}).refine_session()
    session.turn_and_write(f'Rename "{leaf}" to "Odds and ends".', out)
    session = refined(out).refine_session()
    session.turn_and_write(None, out, undo=True)  # no model call: nothing added
    lines = (out / "trace.jsonl").read_text().splitlines()
    assert lines[:len(ran)] == ran  # the run's own decisions stay as written
    added = [json.loads(line) for line in lines[len(ran):]]
    assert [a["turn"] for a in added] == [1, 1] and '"Odds and ends"' in added[1]["answer"]


@pytest.mark.local_server
def test_a_top_cluster_asked_for_a_better_name_is_told_its_present_name_as_its_own(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    top = refined(out).refine_session().result().top_clusters[0]
    agent = refined(out, {"action": "rename"}, {"cluster": top["name"], "new_name": "", "description": ""},
                    {"name": "Everyday errands", "description": "Texts about errands, such as zeppelins.",
                     "second_name": "Daily errands"})
    reply = agent.chat(f'Give "{top["name"]}" a better name.')
    assert '"Everyday errands"' in reply, reply
    renamed = next(t for t in agent.result_.top_clusters if t["name"] == "Everyday errands")
    assert renamed["description"].endswith("about errands."), renamed  # its examples read as a run's are
    asked = str(agent.chat_model().calls[-1]["messages"][-1].content)
    assert f'named "{top["name"]}" now' in asked
    assert top["name"] not in asked.split("Names already given to other groups:")[1].split("\n")[0]


@pytest.mark.local_server
def test_a_top_cluster_renamed_after_one_of_its_clusters_takes_the_name_and_the_cluster_a_new_one(two_level_run,
                                                                                                  tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = refined(out).refine_session().result()
    top = result.top_clusters[0]
    child = next(c["name"] for c in result.clusters if c["cluster"] == top["children"][0])
    agent = refined(out, {"action": "rename"}, {"cluster": top["name"], "new_name": child, "description": ""},
                    {"name": "Grocery runs", "description": "Texts about trips to buy groceries.",
                     "second_name": "Grocery runs"})
    reply = agent.chat(f'Rename "{top["name"]}" to "{child}".')
    assert 'is now "Grocery runs"' in reply, reply
    after = agent.result_
    assert child in [t["name"] for t in after.top_clusters] and child not in after.names and "Grocery runs" in after.names
    assert "one of the smaller groups of" in str(agent.chat_model().calls[-1]["messages"][1].content)


@pytest.mark.local_server
def test_a_cluster_under_a_top_asked_for_a_better_name_takes_the_narrower_one(two_level_run, tmp_path):
    out, leaf = copy_and_first_cluster(two_level_run, tmp_path / "run")
    agent, reply = renamed_by_the_model(out, leaf, {"name": "Everyday errands", "second_name": "Grocery runs",
                                                    "description": "Texts about errands of every day."})
    assert '"Grocery runs"' in reply and "Grocery runs" in agent.result_.names, reply


@pytest.mark.local_server
def test_a_rule_the_model_writes_in_a_chat_keeps_only_the_examples_its_texts_mention(two_level_run, tmp_path):
    out, leaf = copy_and_first_cluster(two_level_run, tmp_path / "run")
    agent, _ = renamed_by_the_model(out, leaf, {"name": "Grocery runs", "second_name": "Grocery runs",
                                                "description": "Texts about errands, such as zeppelins and airships."})
    renamed = next(c for c in agent.result_.clusters if c["name"] == "Grocery runs")
    assert renamed["description"].endswith("about errands."), renamed["description"]
    # a rule the message gives stays as written, examples and all
    out, _ = copy_and_first_cluster(two_level_run, tmp_path / "again")
    agent, _ = renamed_by_the_model(out, leaf, {"name": "Grocery runs", "description": "Texts about groceries."},
                                    "Texts about errands, such as zeppelins.")
    renamed = next(c for c in agent.result_.clusters if c["name"] == "Grocery runs")
    assert "zeppelins" in renamed["description"], renamed["description"]


@pytest.mark.local_server
def test_a_split_under_a_top_names_its_parts_narrower_and_never_as_a_top(two_level_run, tmp_path):
    """Parts of a cluster under a top take the model's narrower name, as the run's clusters there do; where it
    cannot stand, the first name may not be a top cluster's (two entries of one name, one message naming both)."""
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    before = refined(out).refine_session().result()
    top = before.top_clusters[0]["name"]
    leaf = next(c["name"] for c in before.clusters if c["parent"] is not None)
    other = next(c["name"] for c in before.clusters if c["name"] != leaf)
    agent = refined(out, {"action": "split"}, {"cluster": leaf, "n": 2},
                    {"name": "Everyday errands", "description": "Texts about errands.", "second_name": "Grocery runs"},
                    {"name": top, "description": "Texts about trips.", "second_name": other},
                    {"name": "Bus rides", "description": "Texts about trips.", "second_name": other})
    reply = agent.chat(f'Split "{leaf}" in two.')
    names = agent.result_.names
    assert "Grocery runs" in names and "Bus rides" in names and names.count(top) == 0, reply


def a_text_in(out, top):
    """The id of a text in `top`, and the name of its cluster, from the run folder's files."""
    names = {c["cluster"]: c["name"] for c in json.loads((out / "clusters.json").read_text())}
    for line in (out / "assignments.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["top_cluster"] == top["cluster"]:
            return str(row["id"]), names[row["cluster"]]
    raise AssertionError("no text in the top cluster")


@pytest.mark.local_server
def test_describing_a_top_cluster_describes_it_not_the_cluster_nearest_its_name(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    top = refined(out).refine_session().result().top_clusters[0]
    reply = refined(out, {"action": "describe"}, {"cluster": top["name"]}).chat(f'What is in "{top["name"]}"?')
    assert reply.startswith(f'"{top["name"]}"') and f'holds {top["size"]} of' in reply, reply
    assert reply.count('" (') == 1 + len(top["children"])  # the top cluster, then each of its clusters
    # explaining a text says its top cluster too
    text_id, leaf = a_text_in(out, top)
    reply = refined(out, {"action": "explain"}, {"ids": [text_id]}).chat(f"Why is text {text_id} where it is?")
    assert f'"{leaf}"' in reply and f'under "{top["name"]}"' in reply, reply
    # texts go into a cluster, not a top cluster: the reply says which clusters it holds, and nothing moves
    before = refined(out).refine_session().result().cluster
    agent = refined(out, {"action": "move"}, {"cluster": top["name"], "ids": ["1"], "description": ""})
    reply = agent.chat(f'Text 1 belongs to "{top["name"]}".')
    assert "is a top cluster of" in reply and (agent.result_.cluster == before).all(), reply


@pytest.mark.local_server
def test_fewer_broader_clusters_of_a_two_level_run_are_its_top_level_without_a_model_call(two_level_run, tmp_path):
    import shutil

    out = shutil.copytree(two_level_run, tmp_path / "run")
    before = refined(out).refine_session().result()
    top_of = {c: t["cluster"] for t in before.top_clusters for c in t["children"]}
    agent = refined(out, {"action": "granularity"}, {"direction": "fewer"})  # no answer left for any other call
    reply = agent.chat("Fewer, broader clusters please.")
    after = agent.result_
    assert after.levels == 1 and not after.top_clusters, reply
    assert after.k == before.run["k_top"]
    # each text is now in one cluster with the others of its top cluster, under that top cluster's name
    entry = np.array([top_of.get(int(c), int(c)) for c in before.cluster])
    assert len(set(zip(entry.tolist(), after.cluster.tolist()))) == after.k
    names = {t["name"] for t in before.top_clusters}
    assert names <= set(after.names)
    agent = refined(out, {"action": "undo"})
    agent.chat("undo")
    assert agent.result_.levels == 2 and np.array_equal(agent.result_.cluster, before.cluster)


@pytest.mark.local_server
def test_new_texts_get_both_levels_and_a_new_kind_stands_at_the_top_level(two_level_run, tmp_path):
    import shutil

    from clusteragent import ClusterAgent

    out = shutil.copytree(two_level_run, tmp_path / "run")
    result = ClusterAgent.load(out).predict(["a short note about the snow, number 99"], max_model_calls=0)
    parent = {c["cluster"]: c["parent"] for c in result.clusters}
    record = result.records()[0]
    assert result.levels == 2 and record["top_cluster"] == parent[record["cluster"]]
    new = [f"refund request for invoice {i}: the hotel charged my card twice for one night" for i in range(6)]
    updated = ClusterAgent.load(out).predict(new, update=True, max_model_calls=0)
    (added,) = updated.run["new_clusters"]
    entry = next(c for c in updated.clusters if c["cluster"] == added)
    # hotel refunds among notes on weather, sport and food: no top covers them, so none takes them in
    assert entry["parent"] is None and entry["level"] == 1
    assert any(f'{added} "{entry["name"]}" (at the top level)' in note for note in updated.run["notes"])
    clusters = json.loads((out / "clusters.json").read_text())
    assert any(c["cluster"] == added and c["level"] == 1 and c["parent"] is None for c in clusters)
    at_top = [c["cluster"] for c in json.loads((two_level_run / "clusters.json").read_text()) if c["parent"] is None]
    assert sorted(c["cluster"] for c in clusters if c["parent"] is None) == sorted([*at_top, added])


def test_a_top_of_one_cluster_is_that_cluster_at_the_top_level():
    from clusteragent.hierarchy import with_tops
    from clusteragent.result import build_result
    from clusteragent.tools.corpus import from_texts

    vectors, assignment, _ = themed_leaves(themes=2, leaves_per_theme=2, per_leaf=3)
    tax = leaves(4)
    tops = [{"id": 4, "name": "Wide", "description": "", "children": [0, 1, 2]},
            {"id": 5, "name": "leaf 3", "description": "", "children": [3]}]
    result = build_result(from_texts([f"t{i}" for i in range(len(vectors))]), vectors, tax, assignment,
                          np.ones(len(vectors)), {}, tops=tops)
    assert [t["cluster"] for t in result.top_clusters] == [4]
    alone = next(c for c in result.clusters if c["cluster"] == 3)
    assert alone["level"] == 1 and alone["parent"] is None and result.run["k_top"] == 2
    assert set(result.top_cluster.tolist()) == {3, 4}
    assert with_tops(tax, tops).names.count("leaf 3") == 1  # a message naming it names the cluster


def test_naming_the_leaves_keeps_calls_for_the_top_level():
    """On a short budget the smallest leaves take statistical names, not the top clusters a reader meets first."""
    from fakes import request_schema

    from clusteragent import ClusterAgent
    from clusteragent.naming import NAMING_ATTEMPTS

    def answer(messages, kwargs):
        if request_schema(kwargs)[0] in ("Understanding", "FacetReading"):
            return json.dumps({"facet": "topic", "about_topic": True,
                               "clusters": [{"name": w, "description": f"Notes about the {w}."}
                                            for words in THEMES.values() for w in words]})
        return json.dumps({"name": f"Kind {len(model.calls)}", "description": "Notes of one kind."})

    model = ScriptedChatModel(script=answer)
    agent = ClusterAgent(model=model, k=15, max_model_calls=12, strategy="auto", review_rounds=0, progress=False)
    result = agent.fit([r["text"] for r in MANY], instruction="Group by topic.").result_
    assert result.levels == 2 and all(t["named_by"] == "model" for t in result.top_clusters)
    kept = [e for e in result.run["decisions"] if e.get("step") == "cluster_view"][0]["calls_kept_for_top_names"]
    assert kept == NAMING_ATTEMPTS * len(result.top_clusters)  # a refused first answer still leaves a retry
    # Every top took one call, so the calls it left named clusters after it: none goes unused.
    assert result.run["model_calls"] == 12
    late = [e for e in result.run["audit"] if e["by"] == "finalize: a call the top level left"]
    assert len(late) == kept - len(result.top_clusters)
    assert {e["to"] for e in late} <= {c["name"] for c in result.clusters if c["named_by"] == "model"}
    assert not any(f'"{e["from"]}"' in n for e in late for n in result.run["notes"])  # no stale note
    unnamed = [c["name"] for c in result.clusters if c["named_by"] == "statistics"]
    assert unnamed and all(any(f'"{name}"' in n and "no model calls were left" in n for n in result.run["notes"])
                           for name in unnamed)


# Words no two names share (a word every name has is cut from them all: refine_names.without_shared_words).
FIRST = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()
SECOND = "amber birch cedar dune ember fern grove heath iris jade kelp larch moss nettle oak pine".split()


@pytest.mark.parametrize("k, levels", [(15, 2), (6, 1)])
def test_clusters_under_a_top_level_take_the_models_narrower_name(k, levels):
    """Under a top level the tops name the facet's values, so a cluster takes the second, narrower name the
    model gives; with one level the first name, the value itself, stands."""
    from fakes import request_schema

    from clusteragent import ClusterAgent

    def answer(messages, kwargs):
        if request_schema(kwargs)[0] in ("Understanding", "FacetReading"):
            return json.dumps({"facet": "topic", "about_topic": True,
                               "clusters": [{"name": w, "description": f"Notes about the {w}."}
                                            for words in THEMES.values() for w in words]})
        n = len(model.calls) % len(FIRST)
        return json.dumps({"name": FIRST[n], "description": "Notes of one kind.", "second_name": SECOND[n]})

    model = ScriptedChatModel(script=answer)
    agent = ClusterAgent(model=model, k=k, max_model_calls=60, strategy="auto", review_rounds=0, progress=False)
    result = agent.fit([r["text"] for r in MANY], instruction="Group by topic.").result_
    assert result.levels == levels
    leaves = [c["name"].lower() for c in result.clusters if "children" not in c and c["named_by"] == "model"]
    assert len(leaves) == k and set(leaves) <= set(SECOND if levels == 2 else FIRST), leaves
    tops = [t["name"].lower() for t in result.top_clusters if t["named_by"] == "model"]
    assert set(tops) <= set(FIRST), tops  # the tops keep the first names


def test_a_cluster_named_with_a_call_the_top_level_left_is_never_nested_in_another_name():
    """Named last, after the end-of-run check for a name in fewer of another's words, a late name that adds
    words to another ("Voice control commands" beside "Voice control") would stay: it is refused there."""
    from fakes import request_schema

    from clusteragent import ClusterAgent

    seen_tops = []

    def answer(messages, kwargs):
        if request_schema(kwargs)[0] in ("Understanding", "FacetReading"):
            return json.dumps({"facet": "topic", "about_topic": True,
                               "clusters": [{"name": w, "description": f"Notes about the {w}."}
                                            for words in THEMES.values() for w in words]})
        asked = str(messages[-1].content)
        seen_tops.append("smaller groups" in asked)
        late = any(seen_tops) and "smaller groups" not in asked
        name = f"Kind {len(model.calls)}" if not late else "Kind 2 more"  # adds a word to "Kind 2"
        return json.dumps({"name": name, "description": "Notes of one kind."})

    model = ScriptedChatModel(script=answer)
    agent = ClusterAgent(model=model, k=15, max_model_calls=12, strategy="auto", review_rounds=0, progress=False)
    result = agent.fit([r["text"] for r in MANY], instruction="Group by topic.").result_
    assert any(seen_tops) and "Kind 2" in result.names, result.names
    assert "Kind 2 more" not in result.names, result.names


def test_naming_the_top_level_says_how_many_tops_it_names_and_counts_them(capsys, monkeypatch):
    """The progress line counts only the top clusters of several clusters (the model names those; a cluster on
    its own keeps its name), and a bar counts them off: naming them took a minute of the main job unshown."""
    from fakes import request_schema

    from clusteragent import ClusterAgent

    def answer(messages, kwargs):
        if request_schema(kwargs)[0] in ("Understanding", "FacetReading"):
            return json.dumps({"facet": "topic", "about_topic": True, "clusters": []})
        return json.dumps({"name": f"Kind {len(model.calls)}", "description": "Notes of one kind."})

    model = ScriptedChatModel(script=answer)
    monkeypatch.delenv("CLUSTERAGENT_PROGRESS")  # the tests' quiet default, which a user does not have
    result = ClusterAgent(model=model, k=15, max_model_calls=60, strategy="auto", review_rounds=0).fit(
        [r["text"] for r in MANY], instruction="Group by topic.").result_
    err = capsys.readouterr().err
    broad = sum(len(t["children"]) > 1 for t in result.top_clusters)
    assert result.levels == 2 and broad >= 2
    assert f"clusteragent: naming {broad} top clusters over 15 clusters" in err, err
    assert "naming top clusters" in err


def test_a_top_cluster_is_shown_to_the_model_by_texts_of_every_one_of_its_clusters():
    from clusteragent.top_naming import spread_members

    vectors, assignment, _ = themed_leaves(themes=1, leaves_per_theme=3, per_leaf=12)
    assignment = assignment.copy()
    assignment[np.flatnonzero(assignment == 2)[:8]] = 0  # leaf 0 the largest (20 texts), leaf 2 the smallest (4)
    shown = spread_members(vectors, assignment, [2, 1, 0], 6)
    assert len(shown) == 6 and [int(assignment[r]) for r in shown] == [0, 1, 2, 0, 1, 2]

    def most_central(leaf):  # brute force: the member closest to the leaf's mean direction
        rows = np.flatnonzero(assignment == leaf)
        return rows[np.argmax(vectors[rows] @ vectors[rows].mean(axis=0))]
    assert list(shown[:3]) == [most_central(0), most_central(1), most_central(2)]
    assert len(spread_members(vectors, assignment, [0, 1, 2], 2)) == 2  # fewer texts than clusters: the largest


def test_a_top_refused_for_its_clusters_name_is_asked_again_from_its_clusters_names_alone():
    """At temperature 0 the model repeats a refused answer on the same texts; the second call shows the top's
    clusters' names without texts, the question it answers best for a group of groups."""
    from fakes import delimited_texts

    vectors, assignment, theme = themed_leaves()
    tax = leaves(15)

    def answer(messages, kwargs):
        prompt = messages[-1].content
        if delimited_texts(prompt):  # shown texts: it offers the name of one of the top's clusters (the last
            # listed: the first, its largest, may name it)
            part = prompt.split("smaller groups: ")[1].split(".")[0].split(", ")[-1]
            return json.dumps({"name": part, "description": "Texts of one leaf."})
        return json.dumps({"name": f"Theme {len(model.calls)}", "description": "Texts of one theme."})
    model = ScriptedChatModel(script=answer)
    tops, _, _ = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax, assignment)
    assert len(tops) == 3 and {t["named_by"] for t in tops} == {"model"} and len(model.calls) == 6
    assert all(t["name"].startswith("Theme ") for t in tops)
    # with one call left for a top, the refused first answer leaves it its statistical name
    model = ScriptedChatModel(script=answer)
    llm = StructuredLLM(model)
    tops, _, _ = build_tops(context(vectors, llm, calls=4), "Group by topic.", "topic", tax, assignment)
    assert len(model.calls) <= 4 and "statistics" in {t["named_by"] for t in tops}


def test_a_top_takes_the_name_its_clusters_share_and_the_cluster_so_named_is_named_again():
    """Over "Sports", "Sports teams", ... the model names the top "Sports"; the cluster "Sports" is named again
    as a part of it, by the model, else (it answers the top's name again) by its distinctive words, and the
    rename is recorded; "Sports info", alike the top's name but in other words, stays."""
    vectors, assignment, theme = themed_leaves()
    names = ["Sports", "Sports teams", "Sports scores", "Sports fans", "Sports info", "Baking", "Grilling", "Soups",
             "Salads", "Desserts", "Rain", "Snow", "Heat", "Wind", "Fog"]
    tax = Taxonomy.from_specs([(n, f"Texts about {n.lower()}.") for n in names])

    def answer(messages, kwargs):
        prompt = messages[1].content  # the question (a retry adds the reason after it)
        if "one of the smaller groups of" in prompt:  # the cluster named again as a part of its top
            return json.dumps({"name": asked_names[-1], "description": "Texts about the results of matches."})
        parts = prompt.split("smaller groups: ")[1].split(".")[0].split(", ")
        return json.dumps({"name": "Sports" if "Sports" in parts else f"Theme {len(model.calls)}",
                           "description": "Texts of one theme."})
    asked_names = []
    for part_name, renamed_by in (("Match results", "model"), ("Sports", "statistics")):
        asked_names.append(part_name)
        model = ScriptedChatModel(script=answer)
        tops, grown, record = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax,
                                         assignment)
        sports = next(t for t in tops if set(t["children"]) == {0, 1, 2, 3, 4})
        assert sports["name"] == "Sports" and sports["named_by"] == "model"
        assert grown.by_id(0).name != "Sports" and grown.by_id(0).named_by == renamed_by
        assert [(e["from"], e["to"]) for e in record["renamed"]] == [("Sports", grown.by_id(0).name)]
        assert grown.names[1:] == names[1:] and len(set(grown.names + [t["name"] for t in tops])) == 18
    assert record["renamed"][0]["asked"] and grown.by_id(0).name != "Match results"
    assert "'Sports' names the whole this group is a part of" in str(model.calls[-1]["messages"][-1].content)


def test_a_cluster_named_in_its_top_clusters_words_in_another_order_is_named_again():
    """"Weapon hoarding" under the top "Hoarding weapons" is the top's name; "Wildlife" beside it stays."""
    from clusteragent.top_naming import children_renamed

    texts = [f"stockpiling rifles and ammunition before the crash {i}" for i in range(5)] + \
            [f"deer and foxes seen in the forest {i}" for i in range(4)]
    assignment = np.array([0] * 5 + [1] * 4)
    tax = Taxonomy.from_specs([("Weapon hoarding", "Texts about weapons."), ("Wildlife", "Texts about animals.")])
    tops = [{"id": 2, "name": "Hoarding weapons", "description": "", "children": [0, 1]}]
    grown, audit = children_renamed(None, 0, "Group by topic.", "topic", texts, np.eye(9, dtype=np.float32),
                                    assignment, tops, tax)
    assert [e["from"] for e in audit] == ["Weapon hoarding"] and grown.by_id(1).name == "Wildlife"
    assert grown.by_id(0).name not in ("Weapon hoarding", "Hoarding weapons")


def test_a_top_takes_the_name_of_its_largest_cluster_shown_first_and_that_cluster_is_named_again():
    """The model names each top after the first cluster listed: that is the top's largest, whose name the top
    may take (it is mostly that), and that cluster is asked for a name that sets it apart within the top."""
    vectors, assignment, theme = themed_leaves()
    assignment = assignment.copy()
    largest = {0: 3, 1: 7, 2: 11}  # one cluster of each theme grows by half of a neighbour's texts
    for leaf in largest.values():
        neighbour = np.flatnonzero(assignment == leaf + 1)
        assignment[neighbour[:6]] = leaf
    tax = Taxonomy.from_specs([(f"Field {i}", f"Texts about field {i}.") for i in range(15)])
    listed = []

    def answer(messages, kwargs):
        prompt = messages[1].content
        if "one of the smaller groups of" in prompt:
            return json.dumps({"name": f"Branch {len(model.calls)}", "description": "Texts about one branch."})
        parts = prompt.split("smaller groups: ")[1].split(".")[0].split(", ")
        listed.append(parts)
        return json.dumps({"name": parts[0], "description": "Texts of one field."})

    model = ScriptedChatModel(script=answer)
    tops, grown, record = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax,
                                     assignment)
    named = {t["name"]: t for t in tops if len(t["children"]) > 2}
    assert set(named) == {f"Field {i}" for i in largest.values()}, tops
    assert all(t["named_by"] == "model" for t in named.values())
    assert all(parts[0] == f"Field {largest[theme[int(parts[0].split()[1])]]}" for parts in listed)
    assert sorted(e["from"] for e in record["renamed"]) == sorted(named)
    assert all(grown.by_id(c).name.startswith("Branch") for c in largest.values())


@pytest.mark.parametrize("name, parts, each", [
    ("Radio and Lego enthusiasts", ["Radio enthusiasts", "Lego enthusiast"], True),
    ("Lego & radio", ["Radio enthusiasts", "Lego enthusiast"], True),
    ("Health and wellness", ["Health and medicine", "Nutrition and health"], False),  # a word both share
    ("Cooking tools", ["Cooking", "Food prep"], False),
    ("Music and news", ["Music player", "News aggregator", "Podcasts"], False),  # only two parts are paired
    ("Travel and leisure", ["Flights", "Hotels"], False),  # words of neither: what the model found they share
])
def test_a_top_named_after_each_of_its_two_clusters_is_told_apart(name, parts, each):
    from clusteragent.top_naming import names_each_part

    assert names_each_part(name, parts) is each


@pytest.mark.parametrize("name, parts, texts, each", [
    ("VBA MATLAB", ["VBA programming", "MATLAB"], ["Calling MATLAB from VBA"], True),
    ("Spring hibernate LINQ", ["Hibernate", "LINQ", "Spring development"], ["Spring Hibernate setup"], True),
    ("Functional programming Scala", ["Scala development", "Functional programming"],
     ["Functional programming in Scala"], True),  # "in" stands between the two words in the texts
    ("Credit card", ["Credit score", "Card payments"], ["My credit-card was declined"], False),  # a compound
    ("Credit cards", ["Credit score", "Card payments"], ["Is my credit card safe?"], False),
    ("Credit card", ["Credit score", "Card payments"], ["My score fell"], True),
    ("Spring LINQ", ["Hibernate", "LINQ", "Spring development"], [], False),  # one part not named
    ("Web development", ["Web development", "Apache"], [], False),  # one part's name: refused when named
    ("Java persistence", ["Hibernate", "Spring development"], [], False),
])
def test_a_top_named_by_its_clusters_names_side_by_side_is_told_apart(name, parts, texts, each):
    from clusteragent.top_naming import names_each_part

    assert names_each_part(name, parts, texts) is each


def test_a_top_of_two_clusters_named_after_both_leaves_them_on_their_own():
    vectors, assignment, theme = themed_leaves(themes=7, leaves_per_theme=2)
    tax = leaves(14)

    def answer(messages, kwargs):
        first, second = messages[-1].content.split("smaller groups: ")[1].split(".")[0].split(", ")
        paired = len(model.calls) == 1 or pair_all
        return json.dumps({"name": f"{first} and {second}" if paired else f"Theme {len(model.calls)}",
                           "description": "Texts of two leaves."})
    pair_all = False
    model = ScriptedChatModel(script=answer)
    tops, _, record = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax, assignment)
    undone = [t for t in tops if t["named_by"] == "its only cluster"]
    assert record["levels"] == 2 and len(record["undone"]) == 1 and " and " in record["undone"][0]
    assert len(undone) == 2 and all(len(t["children"]) == 1 for t in undone)
    assert [t["name"] for t in undone] == [tax.by_id(t["children"][0]).name for t in undone]
    assert len(tops) == 8 and sorted(c for t in tops for c in t["children"]) == list(range(14))
    pair_all = True
    model = ScriptedChatModel(script=answer)
    tops, _, record = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax, assignment)
    assert tops == [] and record["levels"] == 1 and len(record["undone"]) == 7


def test_a_top_named_by_its_clusters_names_side_by_side_leaves_them_on_their_own():
    vectors, assignment, theme = themed_leaves(themes=7, leaves_per_theme=2)
    tax = Taxonomy.from_specs([(f"{word} work", f"texts about {word}") for word in
                               "Drupal MATLAB Hibernate LINQ Haskell Scala Qt Bash Oracle Excel Cocoa Django Rails Perl"
                               .split()])

    def answer(messages, kwargs):
        parts = messages[-1].content.split("smaller groups: ")[1].split(".")[0].split(", ")
        first_words = " ".join(p.split()[0] for p in parts)
        return json.dumps({"name": first_words if len(model.calls) <= 2 else f"Theme {len(model.calls)}",
                           "description": "Texts of two leaves."})
    model = ScriptedChatModel(script=answer)
    tops, _, record = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax, assignment)
    assert record["levels"] == 2 and len(record["undone"]) == 2 and " and " not in record["undone"][0]
    assert len([t for t in tops if t["named_by"] == "its only cluster"]) == 4 and len(tops) == 9


def test_a_top_of_two_clusters_the_model_gives_no_valid_name_is_undone_and_one_of_three_is_not():
    def answer(messages, kwargs):
        parts = messages[-1].content.split("smaller groups: ")[1].split(".")[0].split(", ")
        refused = "leaf 0" in parts  # each time the name of one of its own clusters, not its largest
        return json.dumps({"name": parts[-1] if refused else f"Theme {len(model.calls)}", "description": "Texts."})

    for themes, per_top, undone in ((7, 2, 1), (5, 3, 0)):
        vectors, assignment, theme = themed_leaves(themes=themes, leaves_per_theme=per_top)
        tax = leaves(themes * per_top)
        model = ScriptedChatModel(script=answer)
        tops, _, record = build_tops(context(vectors, StructuredLLM(model)), "Group by topic.", "topic", tax,
                                     assignment)
        statistical = [t for t in tops if t["named_by"] == "statistics"]
        assert len(record.get("undone", [])) == undone and len(statistical) == 1 - undone
        assert sorted(c for t in tops for c in t["children"]) == list(range(themes * per_top))


@pytest.mark.local_server
def test_the_leaf_names_bench_names_a_runs_clusters_both_ways_and_checks_them(two_level_run, capsys):
    from clusteragent.evals.bench_leaf_names import main

    clusters = [c for c in json.loads((two_level_run / "clusters.json").read_text()) if "children" not in c]
    with FakeOpenAIServer() as server, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", server.url)
        assert main([str(two_level_run), "--model", "openai:fake", "--seeds", "0,1", "--checks", "4"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["name"] for line in lines] == ["first", "narrower"] and len(clusters) == 15
    for line in lines:
        assert line["clusters"] == len(clusters) == len(line["names"]) and len(line["fidelity"]) == 2
        assert all(0 <= f <= 1 for f in line["fidelity"]) and 0 <= line["fidelity_all"] <= 1


def test_a_top_split_into_its_clusters_says_so_in_one_list():
    """Split into five parts of one cluster each, the reply read '"A" (1 cluster) and "B" (1 cluster) and ...'."""
    from clusteragent.hierarchy import split_top
    from clusteragent.tools import taxonomy as tx

    words = ["police", "travel", "cars"]
    texts = [f"{w} story {i}" for w in words for i in range(4)]
    assignment = np.repeat([0, 1, 2], 4)
    vectors = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)
    tax = tx.Taxonomy([tx.Cluster(i, w.capitalize()) for i, w in enumerate(words)], 3)
    top = {"id": 3, "name": "Mixed", "description": "", "children": [0, 1, 2]}
    _, _, reply = split_top([top], top, 3, tx.Taxonomy(tax.clusters, 4), assignment, vectors, texts, None, 0,
                            "Group by topic.", "topic", [*tax.names, "Mixed"])
    assert reply.startswith('Split the top cluster "Mixed" into "') and reply.endswith('", 1 cluster each.'), reply
    assert reply.count(" and ") == 1, reply

"""New regions (tools/novelty.py): new texts where a run's texts hardly reach, on seeded vectors with a known answer."""

import numpy as np
import pytest

from clusteragent.tools.novelty import new_regions

OLD, SAME, NOVEL = 160, 40, 12  # old texts in four groups; new ones of the same four; new ones of a fifth kind


def corpus(seed: int, novel: int = NOVEL) -> tuple[np.ndarray, np.ndarray]:
    """Old texts around four centres, then new texts around the same four and `novel` around a fifth, spread
    twice as wide (a kind whose texts are far less alike than the old kinds' are)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 32))

    def around(which, per, spread):
        v = np.repeat(centres[which], per, axis=0) + spread * rng.normal(size=(len(which) * per, 32))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    vectors = np.vstack([around([0, 1, 2, 3], OLD // 4, 0.3), around([0, 1, 2, 3], SAME // 4, 0.3),
                         around([4], novel, 0.6)]).astype(np.float32)
    return vectors, np.arange(len(vectors)) >= OLD


@pytest.mark.parametrize("seed", range(4))
def test_a_new_kind_fills_one_region_and_new_texts_of_old_kinds_none(seed):
    vectors, is_new = corpus(seed)
    regions = new_regions(vectors, is_new, seed=seed)
    assert [sorted(r.tolist()) for r in regions] == [list(range(OLD + SAME, OLD + SAME + NOVEL))]
    without = new_regions(vectors[:OLD + SAME], is_new[:OLD + SAME], seed=seed)  # new texts like the old: no region
    assert without == []


def test_past_the_sample_new_texts_follow_their_nearest_sampled_text():
    vectors, is_new = corpus(1)
    regions = new_regions(vectors, is_new, seed=1, max_texts=150)  # 62 texts are not in the tree
    assert [sorted(r.tolist()) for r in regions] == [list(range(OLD + SAME, OLD + SAME + NOVEL))]


def test_no_region_without_both_old_and_new_texts():
    vectors, is_new = corpus(0)
    assert new_regions(vectors, np.zeros(len(vectors), bool)) == []
    assert new_regions(vectors, np.ones(len(vectors), bool)) == []

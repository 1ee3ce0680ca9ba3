"""Feature splitting across dictionary sizes: on a planted hierarchy (parents whose children are small
perturbations of them, the parent firing whenever a child does) the splitting is known."""

import pytest
import torch

from mi_course.data.planted_features import PlantedHierarchy
from mi_course.errors import InputError
from mi_course.methods import feature_splitting as FS
from mi_course.methods import sae as S


@pytest.fixture(scope="module")
def hierarchy():
    return PlantedHierarchy(d=32, n_parents=8, n_children=3, spread=0.6, p_parent=0.15, seed=0)


def test_the_planted_hierarchy_is_what_it_says(hierarchy):
    h = hierarchy
    assert h.parents.shape == (8, 32) and h.children.shape == (8, 3, 32) and h.child_directions.shape == (24, 32)
    assert torch.allclose(h.children.norm(dim=-1), torch.ones(8, 3))
    cos = (h.children * h.parents[:, None]).sum(-1)
    assert torch.allclose(cos, torch.full_like(cos, 1 / (1 + 0.6**2) ** 0.5), atol=1e-5)  # each child at 0.86
    x, pc, cc = h.sample(500, torch.Generator().manual_seed(1))
    assert torch.allclose(x, cc @ h.child_directions, atol=1e-6)
    on = cc.reshape(500, 8, 3) > 0
    assert torch.equal(on.any(-1), pc > 0)             # the parent fires exactly when one of its children does
    assert int(on.sum(-1).max()) == 1                  # siblings never fire together


def test_planted_decoders_give_the_planted_tree(hierarchy):
    h = hierarchy
    g = torch.Generator().manual_seed(3)
    perm_s, perm_l = torch.randperm(8, generator=g), torch.randperm(24, generator=g)
    small = h.parents[perm_s] * 2.5                    # decoder norms do not matter
    large = h.child_directions[perm_l] + 0.01 * torch.randn(24, 32, generator=g)
    tree = FS.family_tree(small, large, threshold=0.7)
    truth_parent = torch.argsort(perm_s)[h.family[perm_l]]   # the small latent holding each child's parent
    assert torch.equal(tree.parent, truth_parent)
    assert sorted(tree.splits()) == list(range(8)) and tree.n_children().tolist() == [3] * 8
    fam = tree.families()
    assert set(fam) == set(range(8)) and all(len(v) == 3 for v in fam.values())
    assert all(c1 >= c2 for v in fam.values() for (_, c1), (_, c2) in zip(v, v[1:]))   # best child first
    assert tree.children(int(perm_s.argsort()[0])) == sorted(
        (int(i) for i in (h.family[perm_l] == 0).nonzero()[:, 0]), key=lambda c: -float(tree.cos[c]))
    (row,) = FS.splitting_summary([small, large], 0.7)
    assert row["sizes"] == [8, 24] and row["close_share"] == 1.0 and row["n_splits"] == 8
    assert row["children_per_split"] == 3.0 and row["parents_with_a_child"] == 1.0
    assert row["mean_max_cos"] == pytest.approx(0.857, abs=0.01)


def test_random_decoders_are_the_chance_level(hierarchy):
    h = hierarchy
    rand = FS.random_decoders_like([h.parents, h.child_directions], seed=0)
    assert [r.shape for r in rand] == [(8, 32), (24, 32)]
    rep = FS.splitting_report([h.parents, h.child_directions], 0.7)
    assert rep["random"][0]["close_share"] == 0.0 and rep["random"][0]["n_splits"] == 0
    assert rep["random"][0]["mean_max_cos"] < 0.45 < rep["trained"][0]["mean_max_cos"]


def test_the_same_dictionary_twice_does_not_split(hierarchy):
    (row,) = FS.splitting_summary([hierarchy.child_directions, hierarchy.child_directions], 0.99)
    assert row["close_share"] == 1.0 and row["n_splits"] == 0 and row["mean_max_cos"] == pytest.approx(1.0)


def test_sharing_on_the_planted_coefficients(hierarchy):
    """The true coefficients as latents: children inside the parent, covering it, never together."""
    h = hierarchy
    _, pc, cc = h.sample(3000, torch.Generator().manual_seed(2))
    s = FS.activation_sharing(pc[:, 0], cc[:, :3])
    assert s["within_parent"].tolist() == [1.0, 1.0, 1.0]
    assert s["coverage"] == 1.0 and s["sibling_overlap"] == 0.0
    assert float(s["share_of_parent"].sum()) == pytest.approx(1.0) and float(s["activation_share"].sum()) == pytest.approx(1.0)
    assert s["share_of_parent"].tolist() == pytest.approx([1 / 3] * 3, abs=0.06)
    assert s["parent_frequency"] == pytest.approx(0.15, abs=0.02)
    other = FS.activation_sharing(pc[:, 1], cc[:, :3])     # another family's parent: no nesting
    assert float(other["within_parent"].max()) < 0.3 and other["coverage"] < 0.3


def test_sharing_by_hand():
    parent = torch.tensor([1.0, 2.0, 0.0, 3.0, 0.0, 1.0])
    kids = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 3.0]])
    s = FS.activation_sharing(parent, kids)
    assert s["within_parent"].tolist() == pytest.approx([2 / 3, 1.0])
    assert s["share_of_parent"].tolist() == pytest.approx([0.5, 0.5])
    assert s["coverage"] == pytest.approx(0.75)
    assert s["sibling_overlap"] == pytest.approx(1 / 4)
    assert s["activation_share"].tolist() == pytest.approx([2 / 6, 4 / 6])
    assert FS.activation_sharing(parent, kids[:, 0])["sibling_overlap"] == 0.0   # one child


@pytest.mark.slow  # trains two SAEs (~10 s on a busy core)
def test_trained_saes_split_the_planted_families(hierarchy):
    """TopK SAEs of 8 and 24 latents: the small one learns the parents, the large one the children,
    and matching by decoder cosine puts every child under its own family's parent."""
    h = hierarchy
    src = S.GeneratorSource(lambda n, g: h.sample(n, g)[0], seed=1)
    saes = []
    for m in (8, 24):
        sae = S.SparseAutoencoder(32, m, "topk", k=2, seed=0)
        S.train_sae(sae, src, steps=600, batch_size=256, lr=3e-3, progress=False, dead_after_tokens=20_000)
        saes.append(sae)
    small_to_parent = FS.nearest_parent(h.parents, saes[0])
    large_to_child = FS.nearest_parent(h.child_directions, saes[1])
    assert float(small_to_parent[1].min()) > 0.85 and len(set(small_to_parent[0].tolist())) == 8
    tree = FS.family_tree(saes[0], saes[1], 0.7)
    same_family = small_to_parent[0][tree.parent] == h.family[large_to_child[0]]
    assert float(same_family.float().mean()) >= 0.95
    rep = FS.splitting_report(saes, 0.7)
    (ours,), (rand,) = rep["trained"], rep["random"]
    assert ours["close_share"] >= 0.9 and ours["n_splits"] >= 6 and rand["close_share"] < 0.1 and rand["n_splits"] == 0
    x, _, _ = h.sample(4000, torch.Generator().manual_seed(9))
    with torch.no_grad():
        sharing = FS.family_sharing(tree, saes[0].encode(x), saes[1].encode(x))
    assert set(sharing) == set(tree.families())
    within = torch.cat([v["within_parent"] for v in sharing.values()])
    assert float(within.median()) > 0.85               # children fire inside their parent's contexts
    assert max(v["sibling_overlap"] for v in sharing.values()) < 0.3


def test_bad_inputs(hierarchy):
    h = hierarchy
    with pytest.raises(InputError, match="different spaces"):
        FS.family_tree(h.parents, torch.randn(5, 16))
    with pytest.raises(InputError, match="smallest first"):
        FS.splitting_summary([h.child_directions, h.parents])
    with pytest.raises(InputError, match="at least two"):
        FS.splitting_summary([h.parents])
    with pytest.raises(InputError, match="threshold"):
        FS.family_tree(h.parents, h.child_directions, threshold=1.5)
    with pytest.raises(InputError, match="parent must be an int"):
        FS.family_tree(h.parents, h.child_directions).children(8)
    with pytest.raises(InputError, match="same tokens"):
        FS.activation_sharing(torch.ones(5), torch.ones(4, 2))
    with pytest.raises(InputError, match=r"\[n_tokens, 24\]"):
        FS.family_sharing(FS.family_tree(h.parents, h.child_directions), torch.ones(5, 8), torch.ones(5, 23))

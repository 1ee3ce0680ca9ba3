import pytest
import torch

from conftest import SHARED
from mi_course.data import ioi
from mi_course.errors import InputError

GPT2_DIR = SHARED / "data" / "gpt2-tokenizer"


def test_prompt_and_answer():
    ds = ioi.make_ioi(8, seed=0, templates=0)
    for text, (a, b, s), io, sid in zip(ds.prompts, ds.names, ds.io, ds.s):
        assert text.startswith(f"When {a} and {b} went to the ") and text.endswith(" to")
        assert s in (a, b)
        io_name = a if s == b else b
        assert ioi.vocabulary()[int(io)] == io_name and ioi.vocabulary()[int(sid)] == s
    assert ds.aligned and ds.tokens.shape == (8, 15)
    assert ds.orders[:2] == ["ABBA", "BABA"]


def test_positions_point_at_the_names():
    ds = ioi.make_ioi(40, seed=3, templates="all", prefix_prob=0.5)
    rows = torch.arange(len(ds))
    assert (ds.tokens[rows, ds.pos["IO"]] == ds.io).all()
    assert (ds.tokens[rows, ds.pos["S1"]] == ds.s).all()
    assert (ds.tokens[rows, ds.pos["S2"]] == ds.s).all()
    assert (ds.pos["S1"] < ds.pos["S2"]).all() and (ds.pos["IO"] < ds.pos["S2"]).all()
    assert (ds.tokens[rows, ds.end] == ioi.token_id("to")).all() | (ds.tokens[rows, ds.end] == ioi.token_id("to")).any()
    pad = ioi.token_id(ioi.PAD)
    assert all((ds.tokens[i, int(ds.end[i]) + 1:] == pad).all() for i in range(len(ds)))


def test_abc_and_flipped_corruptions():
    ds = ioi.make_ioi(30, seed=1, templates=[0, 1])
    abc = ds.abc(seed=5)
    assert abc.tokens.shape == ds.tokens.shape
    assert torch.equal(abc.io, ds.io) and torch.equal(abc.s, ds.s)  # clean answers kept for the metric
    for (a, b, s), (x, y, z) in zip(ds.names, abc.names):
        assert len({x, y, z}) == 3 and not ({x, y, z} & {a, b})
    # only the name positions differ
    diff = (abc.tokens != ds.tokens).any(0).nonzero().flatten().tolist()
    assert set(diff) <= {int(ds.pos["IO"][0]), int(ds.pos["S1"][0]), int(ds.pos["S2"][0]),
                         int(ds.pos["IO"][1]), int(ds.pos["S1"][1])}
    fl = ds.flipped()
    rows = torch.arange(len(ds))
    assert (fl.tokens[rows, ds.pos["S2"]] == ds.io).all()
    assert abc.meta["corruption"] == "ABC"


def test_held_out_templates_are_new_sentences_of_known_words():
    train_words = set()
    for t in ioi.TRAIN_TEMPLATES:
        train_words.update(ioi.words_of(t))
    for t in ioi.HELD_OUT_TEMPLATES:
        assert t not in ioi.TRAIN_TEMPLATES
        assert set(ioi.words_of(t)) <= train_words, t
    ds = ioi.make_ioi(12, templates="held_out")
    assert set(ds.template_ids) == set(range(len(ioi.TRAIN_TEMPLATES), len(ioi.TEMPLATES)))


def test_tokenizer_is_deterministic_and_matches_encoder():
    tok = ioi.tokenizer()
    v = ioi.vocabulary()
    assert v[:3] == ("<bos>", "<pad>", "<unk>") and list(v[3:]) == sorted(v[3:])
    ds = ioi.make_ioi(5, seed=2, templates="all")
    for text, row, end in zip(ds.prompts, ds.tokens, ds.end):
        assert [ioi.token_id(ioi.BOS)] + tok.encode(text).ids == row[: int(end) + 1].tolist()
    assert tok.get_vocab_size() == len(v)


def test_seeded():
    a, b = ioi.make_ioi(10, seed=7), ioi.make_ioi(10, seed=7)
    assert a.prompts == b.prompts and torch.equal(a.tokens, b.tokens)
    assert ioi.make_ioi(10, seed=8).prompts != a.prompts


def test_bad_arguments():
    with pytest.raises(InputError, match="templates must be"):
        ioi.make_ioi(4, templates="nope")
    with pytest.raises(InputError, match="template indices"):
        ioi.make_ioi(4, templates=[99])
    with pytest.raises(InputError, match="positive int"):
        ioi.make_ioi(0)
    with pytest.raises(InputError, match="order"):
        ioi.make_ioi(4, order="AB")
    with pytest.raises(InputError, match="vocabulary"):
        ioi.token_id("Zaphod")


@pytest.mark.skipif(not (GPT2_DIR / "tokenizer.json").exists(),
                    reason="GPT-2 tokenizer files not found in ../shared/data/gpt2-tokenizer")
def test_names_are_single_gpt2_tokens():
    encode = ioi.gpt2_encoder(GPT2_DIR)
    assert ioi.single_token_names(encode) == ioi.NAMES
    ds = ioi.make_ioi(16, seed=0, templates="all")
    g = ioi.encode_gpt2(ds, encode)
    rows = torch.arange(len(g))
    assert (g.tokens[:, 0] == ioi.GPT2_BOS_ID).all()
    assert (g.tokens[rows, g.pos["IO"]] == g.io).all() and (g.tokens[rows, g.pos["S2"]] == g.s).all()
    assert encode(" Mary") == [int(g.io[0])] or encode(" " + ds.names[0][0]) in ([int(g.io[0])], [int(g.s[0])])
    clean = ioi.make_ioi(8, templates=0)
    one = ioi.encode_gpt2(clean, encode)
    assert one.aligned  # one template: same length, fit for position sweeps
    abc = ioi.encode_gpt2(clean.abc(seed=2), encode)  # corrupted: clean answers and positions kept
    assert abc.tokens.shape == one.tokens.shape and torch.equal(abc.io, one.io) and torch.equal(abc.s, one.s)
    assert torch.equal(abc.pos["IO"], one.pos["IO"]) and (abc.tokens != one.tokens).any()

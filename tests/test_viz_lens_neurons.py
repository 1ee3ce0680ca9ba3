"""Logit-lens explorer and neuron viewer: widget state responds to controls; bad arguments are clear."""

import pytest
import torch

from mi_course import zoo
from mi_course.data import stdlib_corpus as sc
from mi_course.errors import InputError
from mi_course.methods import logit_lens as ll
from mi_course.zoo.tokenizer_files import load_tokenizer_file

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny untrained model with a real (small) BPE tokenizer."""
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    raw = sc.train_tokenizer(300)
    raw.save(str(path))
    cfg = dict(n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, n_ctx=48, d_vocab=300,
               act_fn="gelu", normalization_type="LN", positional_embedding_type="standard")
    model = zoo.build(cfg, seed=0, tokenizer=load_tokenizer_file(path)).eval()
    corpus = sc.random_windows(sc.tokenize_split(raw, "heldout", max_files=2), 6, 40, torch.Generator().manual_seed(0))
    return model, corpus


def test_logit_lens_explorer_state(small):
    from mi_course.viz.logit_lens import LogitLensExplorer

    model, corpus = small
    ex = LogitLensExplorer(model, "def f(self):\n    return self", target=" self")
    n = ex.tokens.shape[1]
    assert ex.probs.shape == (2, n, 300) and ex.target_probs.shape == (2, n)
    assert torch.allclose(ex.probs[-1], model(ex.tokens)[0].softmax(-1), atol=1e-5)
    assert "after block 1 (output)" in ex.out.value
    ex.k_box.value = 4
    assert ex.top_ids.shape[-1] == 4
    ex.prompt_box.value = "import os"
    assert ex.tokens.shape[1] == model.to_tokens("import os").shape[1] and "import" in "".join(ex.str_tokens)
    ex.target_box.value = "definitely not one token"
    assert "not one" in ex.message and "not one" in ex.out.value
    ex.target_box.value = ""
    assert ex.target_probs is None and ex.message == ""
    lens, _ = ll.train_tuned_lens(model, corpus, steps=3, progress=False)
    ex2 = LogitLensExplorer(model, "x = 1", lens="tuned", tuned_lens=lens)
    before = ex2.probs.clone()
    ex2.lens_box.value = "logit"
    assert ex2.lens == "logit" and ex2.probs.shape == before.shape


def test_logit_lens_explorer_errors(small, attn_model):
    from mi_course.viz.logit_lens import LogitLensExplorer

    model, _ = small
    with pytest.raises(InputError, match="non-empty"):
        LogitLensExplorer(model, "")
    with pytest.raises(InputError, match="lens must"):
        LogitLensExplorer(model, "x", lens="fancy")
    with pytest.raises(InputError, match="tuned lens"):
        LogitLensExplorer(model, "x", lens="tuned")
    with pytest.raises(InputError, match="not one"):
        LogitLensExplorer(model, "x", target="return self")
    with pytest.raises(InputError, match="at most"):
        LogitLensExplorer(model, "x " * 200)
    with pytest.raises(InputError, match="tokenizer"):
        LogitLensExplorer(attn_model, "x")


def test_neuron_viewer_state(small):
    from mi_course.viz.neurons import NeuronViewer

    model, corpus = small
    v = NeuronViewer(model, corpus, layer=1, neuron=5, n_examples=4, context=6)
    assert len(v.examples) == 4
    ex = v.examples[0]
    assert len(ex["tokens"]) == len(ex["acts"]) and ex["acts"][ex["firing_index"]] == pytest.approx(ex["activation"])
    assert ex["activation"] == pytest.approx(v.max_act)
    assert len(v.promoted) == 10 and v.promoted[0][1] >= v.promoted[-1][1]
    assert "neuron 1.5" in v.out.value
    v.neuron_box.value = 9
    assert v.neuron == 9 and "neuron 1.9" in v.out.value
    v.layer_box.value = 0
    assert (v.layer, v.neuron) == (0, 9)
    v.select(1, 2)
    assert v.neuron_box.value == 2 and v.layer_box.value == 1


def test_neuron_viewer_errors(small, attn_model):
    from mi_course.viz.neurons import NeuronViewer

    model, corpus = small
    with pytest.raises(InputError, match="neuron"):
        NeuronViewer(model, corpus, layer=0, neuron=64)
    with pytest.raises(InputError, match="layer"):
        NeuronViewer(model, corpus, layer=2)
    with pytest.raises(InputError, match="batch, pos"):
        NeuronViewer(model, corpus[0])
    with pytest.raises(InputError, match="tokenizer"):
        NeuronViewer(attn_model, corpus)

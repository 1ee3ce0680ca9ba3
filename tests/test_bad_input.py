"""Bad calls to public functions get a clear InputError naming the problem: never a deep torch
traceback, never a silently wrong number. Each row: a call, and words its message must contain."""

from __future__ import annotations

import math

import pytest
import torch

from mi_course import zoo
from mi_course.data import ioi
from mi_course.errors import InputError, MiCourseError
from mi_course.methods import (
    ablation, activation_patching, attribution_patching, circuit_discovery, circuit_evaluation, circuits, components,
    ffn_memories, fourier, grokking, induction, ioi_circuit, logit_attribution, logit_lens, metrics, path_patching,
    talking_heads, toolkit, zoom_in,
)
from mi_course.zoo import hooks


class Models:
    """Zoo models, loaded once, on demand."""

    _cache: dict = {}

    def __getattr__(self, name):
        key = {"attn": "attn-only-2l", "ioi": "ioi-lm", "modadd": "modadd-p113", "text": "text-lm"}[name]
        if key not in self._cache:
            self._cache[key] = zoo.load(key)
        return self._cache[key]


M = Models()
DS = ioi.make_ioi(6, seed=0)
ABC = DS.abc()


def _metric():
    return metrics.ioi_metric(DS)


def _logits():
    return torch.randn(len(DS), DS.tokens.shape[1], 130)


def _bias():
    from mi_course.methods import bias_components

    return bias_components


def _kb_lm():
    """``(kb-lm, its knowledge base)``, loaded once."""
    if "kb-lm" not in Models._cache:
        from mi_course.data.knowledge_base import load_kb

        Models._cache["kb-lm"] = (zoo.load("kb-lm"), load_kb())
    return Models._cache["kb-lm"]


def _check_week06(seed):
    from mi_course.checking import week06

    return week06.check_fourier_basis(fourier.fourier_basis, seed=seed)


def _kn(fn_name, *args, **kwargs):
    """Call ``knowledge_neurons.<fn_name>`` on kb-lm (week 11), loaded once."""
    from mi_course.methods import knowledge_neurons as kn

    return getattr(kn, fn_name)(_kb_lm()[0], *args, **kwargs)


BAD_CALLS = {
    # -- the cases: cryptic torch errors before -------------------------------------------------
    "patching: float tokens": (lambda: activation_patching.patch_resid_by_pos(
        M.ioi, DS.tokens.float(), ABC.tokens, _metric(), progress=False), "integer token ids"),
    "patching: empty batch": (lambda: activation_patching.patch_resid_by_pos(
        M.ioi, DS.tokens[:0], ABC.tokens[:0], _metric(), progress=False), "empty"),
    "patching heads: float corrupted tokens": (lambda: activation_patching.patch_heads(
        M.ioi, DS.tokens, ABC.tokens.float(), _metric(), progress=False), "integer token ids"),
    "IOI signatures: attention-only model (vocab 128)": (lambda: ioi_circuit.attention_signatures(M.attn, DS),
                                                         "vocabulary of 128"),
    "grokking logits: IOI model": (lambda: grokking.all_logits(M.ioi), "modular-addition"),
    "grokking neurons: attention-only model": (lambda: grokking.neuron_activations(M.attn), "modular-addition"),
    "logit diff: answer id out of range": (lambda: metrics.logit_diff(_logits(), DS.io + 500, DS.s),
                                           "token id .* outside the vocabulary"),
    "logit diff: position out of range": (lambda: metrics.logit_diff(_logits(), DS.io, DS.s, DS.end + 100),
                                          "position .* outside"),
    "DLA: answer id out of range": (lambda: logit_attribution.dla_by_head(M.ioi, DS.tokens, DS.io + 500, DS.s, DS.end),
                                    "token id .* outside the vocabulary"),
    "DLA: position out of range": (lambda: logit_attribution.dla_by_head(M.ioi, DS.tokens, DS.io, DS.s, DS.end + 100),
                                   "position .* outside"),
    "checker: seed as text": (lambda: _check_week06("3"), "seed must be an integer"),
    "checker: seed as float": (lambda: _check_week06(1.5), "seed must be an integer"),
    # -- the cases: silently wrong before ------------------------------------------------------
    "key frequencies: NaN norms": (lambda: fourier.key_frequencies_from_norms(torch.tensor([1.0, math.nan, 2.0, 0.5])),
                                   "NaN"),
    "key frequencies: all-zero norms": (lambda: fourier.key_frequencies_from_norms(torch.zeros(57)), "norm 0"),
    "fraction in frequencies: NaN norms": (lambda: fourier.fraction_in_frequencies(
        torch.tensor([1.0, math.nan, 2.0]), [1]), "NaN"),
    "grokking embedding: IOI model (read as p = 129)": (lambda: grokking.embedding_frequency_norms(M.ioi),
                                                        "modular-addition"),
    "grokking key frequencies: IOI model": (lambda: grokking.key_frequencies(M.ioi), "modular-addition"),
    "normalized metric: NaN clean baseline": (lambda: metrics.normalized(_metric(), math.nan, 0.0), "finite"),
    "normalized metric: NaN corrupted baseline": (lambda: metrics.normalized(_metric(), 1.0, torch.tensor(math.nan)),
                                                  "finite"),
    "IOI prompts on text-lm (another vocabulary)": (lambda: ioi_circuit.attention_signatures(M.text, DS),
                                                    "word vocabulary .* vocabulary of 4096"),
    # -- a sweep of the other public functions -------------------------------------------------------------
    "attribution patching: float tokens": (lambda: attribution_patching.attribution_patching(
        M.ioi, DS.tokens.float(), ABC.tokens, _metric()), "integer token ids"),
    "attribution patching: ids beyond the vocabulary": (lambda: attribution_patching.attribution_patching(
        M.attn, DS.tokens, ABC.tokens, _metric()), "vocabulary has 128"),
    "path patching: empty batch": (lambda: path_patching.path_patching(
        M.ioi, DS.tokens[:0], ABC.tokens[:0], _metric(), [components.head(0, 0)]), "empty"),
    "edge attribution: float tokens": (lambda: circuit_discovery.edge_attribution_patching(
        M.ioi, DS.tokens.float(), ABC.tokens, _metric()), "integer token ids"),
    "ablation: float tokens": (lambda: ablation.ablate(M.ioi, DS.tokens.float(), [components.head(0, 0)]),
                               "integer token ids"),
    "ablation: ids beyond the vocabulary": (lambda: ablation.ablate_heads(M.attn, DS.tokens, [(0, 0)]),
                                            "vocabulary has 128"),
    "logit lens: float tokens": (lambda: logit_lens.logit_lens(M.ioi, DS.tokens.float()), "integer token ids"),
    "logit lens: longer than the context": (lambda: logit_lens.logit_lens(
        M.ioi, torch.zeros(1, 200, dtype=torch.long)), "context of 48"),
    "FFN activations: ids beyond the vocabulary": (lambda: ffn_memories.mlp_activations(
        M.ioi, torch.full((1, 4), 5000)), "vocabulary has 130"),
    "FFN value vocab: neuron out of range": (lambda: ffn_memories.value_vocab(M.ioi, 0, 10_000), "neuron"),
    "induction scores: empty batch": (lambda: induction.head_scores(M.attn, torch.zeros(0, 21, dtype=torch.long), 10),
                                      "empty"),
    "induction scores: seq_len as float": (lambda: induction.head_scores(
        M.attn, torch.zeros(1, 21, dtype=torch.long), 10.0), "seq_len must be an integer"),
    "toolkit patch: layer out of range": (lambda: toolkit.patch_resid_pre(M.attn, DS.tokens % 100, ABC.tokens % 100,
                                                                          7, 0), "layer must be in 0..1"),
    "toolkit patch: position as float": (lambda: toolkit.patch_resid_pre(M.attn, DS.tokens % 100, ABC.tokens % 100,
                                                                         0, 1.0), "pos must be an integer"),
    "next-token loss: float tokens": (lambda: toolkit.next_token_loss(torch.randn(2, 5, 10), torch.rand(2, 5)),
                                      "integer token ids"),
    "next-token loss: ids beyond the logits": (lambda: toolkit.next_token_loss(
        torch.randn(2, 5, 10), torch.full((2, 5), 12)), "outside the vocabulary"),
    "answer probability: id out of range": (lambda: metrics.answer_probability(_logits(), DS.io + 500), "outside"),
    "answer loss: float answers": (lambda: metrics.answer_loss(_logits(), DS.io.float()), "integer token ids"),
    "metric on NaN logits": (lambda: metrics.logit_diff(torch.full((6, 3, 130), math.nan), DS.io, DS.s), "NaN"),
    "normalized: not a metric": (lambda: metrics.normalized(3.0, 1.0, 0.0), "callable"),
    "logit-diff directions: id out of range": (lambda: logit_attribution.logit_diff_directions(
        M.ioi, DS.io + 500, DS.s), "outside the vocabulary"),
    "QK circuit: head out of range": (lambda: circuits.qk_circuit(M.attn, 0, 99), "head"),
    "Fourier basis: even p": (lambda: fourier.fourier_basis(4), "odd integer"),
    "restricted loss: frequency out of range": (lambda: grokking.restricted_loss(torch.randn(113, 113, 113), [99]),
                                                "1..56"),
    "hook name: layer as float": (lambda: hooks.resid_pre(1.0), "layer number must be an int"),
    "patching: unknown activation": (lambda: activation_patching.activation_patching(
        M.ioi, DS.tokens, ABC.tokens, _metric(), "result", progress=False), "unknown activation"),
    "zoo: model name not a string": (lambda: zoo.load(3), "expects a model name"),
    "circuit evaluation: float tokens": (lambda: circuit_evaluation.faithfulness(
        M.ioi, DS.tokens.float(), ABC.tokens, _metric(), [components.head(0, 0)]), "integer token ids"),
    "talking heads: NaN basis": (lambda: talking_heads.run_with_projected_sender(
        M.attn, torch.zeros(1, 5, dtype=torch.long), 0, 0, torch.full((64, 2), math.nan)), "NaN"),
    "talking heads: ids beyond the vocabulary": (lambda: talking_heads.run_with_projected_sender(
        M.attn, torch.full((1, 5), 300), 0, 0, torch.zeros(64, 2)), "vocabulary has 128"),
    "head index: layer as float": (lambda: circuits.ov_circuit(M.attn, 0.5, 0), "layer must be an integer"),
    "per-token loss: float tokens": (lambda: induction.per_token_loss(torch.rand(2, 5, 10), torch.rand(2, 5)),
                                      "integer token ids"),
    "real-text induction: windows too short": (lambda: induction.real_text_induction(M.attn, torch.zeros(2, 3, dtype=torch.long)),
                                               "too short"),
    "real-text induction: no repeats": (lambda: induction.real_text_induction(M.attn, torch.arange(12)[None, :]),
                                        "no 2-gram occurs twice"),
    "earlier occurrences: ngram 0": (lambda: induction.earlier_occurrences(torch.zeros(1, 5, dtype=torch.long), 0), "ngram"),
    "previous-token scores: NaN pattern": (lambda: induction.prev_token_scores(torch.full((2, 2, 5, 5), math.nan)),
                                           "NaN"),
    "selectivity: empty tuning curves": (lambda: zoom_in.selectivity(torch.zeros(0, 16)), "empty"),
    "composition score: NaN weights": (lambda: circuits.composition_score(torch.full((4, 4), math.nan),
                                                                          torch.rand(4, 4)), "NaN"),
    "effective rank: share above 1": (lambda: talking_heads.effective_rank(torch.rand(5), 2.0), r"share must lie in \(0, 1\]"),
    "grokking loss: NaN logits": (lambda: grokking.loss_on(torch.full((9, 3), math.nan)), "NaN"),
    "neuron frequency fractions: NaN activations": (lambda: fourier.neuron_frequency_fractions(
        torch.full((5, 5, 2), math.nan)), "NaN"),
    "gradients: empty batch": (lambda: attribution_patching.gradients(
        M.ioi, DS.tokens[:0], _metric(), [hooks.z(0)]), "empty"),
    # -- week 11: knowledge neurons ---------------------------------------------------------------------
    "knowledge neurons: empty prompts": (lambda: _kn("knowledge_neurons", [], "chess"), "non-empty list"),
    "knowledge neurons: t above 1": (lambda: _kn("knowledge_neurons", ["Nado Puzelu enjoys"], "chess", t=1.5), "t must be in"),
    "knowledge neurons: zero steps": (lambda: _kn("knowledge_neurons", ["Nado Puzelu enjoys"], "chess", steps=0), "positive int"),
    "knowledge neurons: neuron out of range": (lambda: _kn("intervention_probs", ["Nado Puzelu enjoys"], "chess", [(0, 600)]), "out of range"),
    "knowledge neurons: a neuron that is not a pair": (lambda: _kn("kn_edit", [5], "chess", "tennis"), r"\(layer, index\) pair"),
    "knowledge neurons: edit to the same object": (lambda: _kn("kn_edit", [(0, 1)], "chess", "chess"), "same token"),
    "knowledge neurons: refine a 2-d tensor": (lambda: __import__("mi_course.methods.knowledge_neurons", fromlist=["x"]).refine(torch.zeros(3, 4)), r"\[n_prompts, n_layers, d_mlp\]"),
    "top_windows: 1-D activations": (lambda: _block3().feature_stats.top_windows(torch.zeros(5), 2), "acts"),
    "keyword_rule: a string, not a list": (lambda: _block3().autointerp.keyword_rule("in"), "list of strings"),
    "detection_score: no non-activating contexts": (lambda: _block3().autointerp.detection_score(
        _block3().autointerp.keyword_rule(["a"]), [["a"]], []), "at least one"),
    "fuzzing_score: lists of different lengths": (lambda: _block3().autointerp.fuzzing_score(
        _block3().autointerp.keyword_rule(["a"]), [["a"]], [[True]], []), "same length"),
    "feature splitting: decoders of different widths": (lambda: __import__(
        "mi_course.methods.feature_splitting", fromlist=["x"]).family_tree(torch.zeros(4, 8), torch.ones(6, 16)),
        "different spaces"),
    "feature splitting: sizes not smallest first": (lambda: __import__(
        "mi_course.methods.feature_splitting", fromlist=["x"]).splitting_summary([torch.ones(6, 8), torch.ones(4, 8)]),
        "smallest first"),
    "feature splitting: a cosine threshold above 1": (lambda: __import__(
        "mi_course.methods.feature_splitting", fromlist=["x"]).family_tree(torch.ones(4, 8), torch.ones(6, 8), 2.0),
        r"threshold must be a cosine in \[-1, 1\]"),
    "feature splitting: parent and children on different tokens": (lambda: __import__(
        "mi_course.methods.feature_splitting", fromlist=["x"]).activation_sharing(torch.ones(5), torch.ones(4, 2)),
        "same tokens"),
    # -- block 3: steering, SHIFT, transcoders --------------------------------------------------------
    "steering: 2-D steering vector": (lambda: __import__("mi_course.methods.steering", fromlist=["x"]).add_vector_hook(
        torch.zeros(2, 128)), "1-D tensor"),
    "steering: latent out of range": (lambda: __import__("mi_course.methods.steering", fromlist=["x"]).clamp_latent_hook(
        zoo.load_sae("text-lm-L1-resid-topk"), 5000, 1.0), r"latent must be an int in 0\.\.1023"),
    "steering: top-prediction share of a target id outside the vocabulary": (lambda: __import__(
        "mi_course.methods.steering", fromlist=["x"]).top_prediction_share(torch.zeros(2, 5, 10), [3, 10]),
        r"target ids must lie in \[0, 10\)"),
    "steering: top-prediction share of 2-D logits": (lambda: __import__(
        "mi_course.methods.steering", fromlist=["x"]).top_prediction_share(torch.zeros(5, 10), [3]), r"\[batch, pos >= 2"),
    "SHIFT: ablating a latent the SAE lacks": (lambda: __import__("mi_course.methods.shift", fromlist=["x"]).ablate_latents(
        zoo.load_sae("text-lm-L1-resid-topk"), torch.zeros(2, 128), [1024]), "latent indices"),
    "transcoders: an SAE where a transcoder is needed": (lambda: __import__(
        "mi_course.methods.transcoders", fromlist=["x"]).splice_hooks(zoo.load_sae("text-lm-L1-resid-topk")),
        "expected a transcoder"),
    "transcoders: the late transcoder's MLP before the early one's": (lambda: (lambda T, m: T.ablation_effect(
        m, T.make_transcoder(m, 2, 8, "relu"), T.make_transcoder(m, 1, 8, "relu"), torch.zeros(1, 4, dtype=torch.long),
        0, 0))(__import__("mi_course.methods.transcoders", fromlist=["x"]), _kb_lm()[0]), "must come after"),
    "transcoders: late latent out of range": (lambda: (lambda T, m: T.direct_attributions(
        m, T.make_transcoder(m, 0, 8, "relu"), T.make_transcoder(m, 1, 8, "relu"), torch.zeros(1, 4, dtype=torch.long),
        8))(__import__("mi_course.methods.transcoders", fromlist=["x"]), _kb_lm()[0]), r"late_latent must be an int in 0\.\.7"),
    "feature circuits: pruning with a negative threshold": (lambda: __import__(
        "mi_course.methods.sparse_feature_circuits", fromlist=["x"]).prune({}, -0.5), "non-negative"),
    "GRACE: negative deferral radius": (lambda: __import__("mi_course.methods.grace", fromlist=["Grace"]).Grace(
        _kb_lm()[0], eps_init=-1.0), "eps_init"),
    "GRACE: attention-only model": (lambda: __import__("mi_course.methods.grace", fromlist=["Grace"]).Grace(M.attn),
                                    "attention-only"),
    "GRACE: unknown sequential method": (lambda: __import__("mi_course.methods.grace", fromlist=["x"]).sequential_editing(
        *_kb_lm(), "memit", 2, progress=False), "method must be"),
    "ripple: a relation without composed consequences": (lambda: __import__(
        "mi_course.methods.ripple_effects", fromlist=["x"]).person_edit(*_kb_lm(), _kb_lm()[1].subjects[0], "job",
                                                                         "pilot"), "ripple edits of a person change"),
    "ripple: editor is not a function": (lambda: __import__("mi_course.methods.ripple_effects", fromlist=["x"]).ripple_table(
        *_kb_lm(), "rome", 2), "editor must be a function"),
    "MEMIT: no requests": (lambda: __import__("mi_course.methods.memit", fromlist=["x"]).apply_memit(
        _kb_lm()[0], []), "requests is empty"),
    "MEMIT: layers not increasing": (lambda: __import__("mi_course.methods.memit", fromlist=["x"]).memit_edits(
        _kb_lm()[0], {"prompt": "{} was born in", "subject": _kb_lm()[1].subjects[0], "target_new": "x"}, [2, 1]),
        "increasing"),
    "MEMIT: update with mismatched K and R": (lambda: __import__("mi_course.methods.memit", fromlist=["x"]).memit_update(
        torch.zeros(3, 5), torch.zeros(4, 2), torch.eye(5), 1.0), "same n"),
    "localization vs editing: tracing and success of different shapes": (lambda: _lve().regression_table(
        torch.zeros(3, 2), torch.zeros(3, 3)), r"\[facts, layers\]"),
    "localization vs editing: a layer outside the one-hot": (lambda: _lve().one_hot(torch.tensor([0, 4]), 3), "0..2"),
    "localization vs editing: rewrite score of a probability 1": (lambda: _lve().rewrite_score(1.0, 0.5), "probabilit"),
    "bias prompts: unknown split": (lambda: _bias().name_pairs(_kb_lm()[1], 3, "test"), "split must be one of"),
    "bias prompts: more name pairs than exist": (lambda: _bias().name_pairs(_kb_lm()[1], 10**6), "unused name pairs"),
    "bias score: a plain list of prompts": (lambda: _bias().bias_score(*_kb_lm(), ["Nesta Brukrok works as a"]),
                                            "BiasPrompts"),
    "bias mediation: unknown component": (lambda: _bias().mediation_effects(
        *_kb_lm(), _bias().bias_prompts(_kb_lm()[1], 1), ["9.9"]), "unknown component"),
    "bias fine-tune: components neither 'whole' nor a list": (lambda: _bias().fine_tune(
        *_kb_lm(), ["a ."], "all"), "'whole' or a list"),
    "bias fine-tune: zero learning rate": (lambda: _bias().fine_tune(*_kb_lm(), ["a ."], lr=0.0), "lr must be a positive"),
    "bias fine-tune: one string as the documents": (lambda: _bias().fine_tune(*_kb_lm(), "He works as a pilot ."),
                                                    "list of documents"),
    "bias random components: k too large": (lambda: _bias().random_components(_kb_lm()[0], 31), r"k must be an int in 1\.\.30"),
    "bias log-odds: 1-d logits": (lambda: _bias().group_log_odds(torch.zeros(5), torch.tensor([0]), torch.tensor([1])),
                                  r"\[n, d_vocab\]"),
}


def _block3():
    from mi_course.methods import autointerp, feature_stats  # noqa: F401

    import mi_course.methods as m
    return m


def _lve():
    from mi_course.methods import localization_vs_editing

    return localization_vs_editing


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_call_gets_a_clear_error(name):
    call, words = BAD_CALLS[name]
    with pytest.raises(MiCourseError) as err:
        call()
    message = str(err.value)
    assert err.type is InputError or issubclass(err.type, MiCourseError)
    import re

    assert re.search(words, message), f"{name}: message {message!r} lacks {words!r}"
    assert len(message) < 600, f"{name}: message too long to read: {message!r}"


def test_the_good_calls_still_work():
    """The validation accepts what the course passes (int32 ids, 0-dim int positions, numpy ints)."""
    import numpy as np

    logits = _logits()
    assert torch.isfinite(metrics.logit_diff(logits, DS.io, DS.s, DS.end))
    assert torch.isfinite(metrics.logit_diff(logits, DS.io.int(), DS.s.int(), -1))
    assert metrics.normalized(_metric(), np.float32(2.0), torch.tensor(0.5))(M.ioi(DS.tokens)).ndim == 0
    assert fourier.key_frequencies_from_norms(torch.tensor([5.0, 0.0, 3.0, 1.0])) == [2, 3]
    assert hooks.z(np.int64(1)) == "blocks.1.attn.hook_z"

"""Steering hooks (feature addition / clamping, difference of means) on planted cases."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import steering as ST
from mi_course.methods.sae import SparseAutoencoder

TINY = dict(n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=16, d_vocab=50, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard")


@pytest.fixture(scope="module")
def tiny():
    model = zoo.build(TINY, seed=0)
    model.eval()
    return model


def axis_sae(d: int = 16) -> SparseAutoencoder:
    """Latent i reads +axis i, latent d + i reads -axis i: reconstruction is exact."""
    sae = SparseAutoencoder(d, 2 * d, "relu", seed=0)
    with torch.no_grad():
        eye = torch.eye(d)
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_diff_of_means_added_to_the_embedding_turns_one_prompt_into_the_other(tiny):
    with_ = torch.tensor([[1, 7, 3]])
    without = torch.tensor([[1, 7, 4]])
    v = ST.diff_of_means(tiny, "hook_embed", with_, without)
    assert torch.allclose(v, tiny.W_E[3] - tiny.W_E[4], atol=1e-5)
    steered = tiny.run_with_hooks(without, fwd_hooks=[("hook_embed", ST.add_vector_hook(v, 1.0, positions=-1))])
    assert torch.allclose(steered, tiny(with_), atol=1e-4)
    # strength 0 changes nothing; positions=None steers every position
    zero = tiny.run_with_hooks(without, fwd_hooks=[("hook_embed", ST.add_vector_hook(v, 0.0))])
    assert torch.allclose(zero, tiny(without))


def test_clamping_sets_the_latent_and_keeps_the_rest():
    sae = axis_sae(4)
    act = torch.randn(2, 3, 4).abs() + 0.01  # axis 0 positive: only latent 0 reads it
    out = ST.clamp_latent_hook(sae, 0, 5.0)(act)
    assert torch.allclose(out[..., 0], torch.full((2, 3), 5.0)) and torch.allclose(out[..., 1:], act[..., 1:])
    assert torch.allclose(sae.encode(out)[..., 0], torch.full((2, 3), 5.0))
    only_last = ST.clamp_latent_hook(sae, 0, 0.0, positions=[-1])(act)
    assert torch.allclose(only_last[:, :-1], act[:, :-1])
    assert torch.allclose(ST.feature_vector(sae, 5), -torch.eye(4)[1])


def test_sweep_feature_steering_raises_a_planted_behaviour_and_costs_loss(tiny):
    """Planted: an SAE whose latent 0 writes W_U[:, a] - W_U[:, b] into the final residual stream."""
    a, b = 5, 9
    sae = SparseAutoencoder(16, 8, "relu", seed=0)
    with torch.no_grad():
        d = tiny.W_U[:, a] - tiny.W_U[:, b]
        sae.W_dec[0] = d / d.norm()
    hook = "blocks.0.hook_resid_post"
    prompts = torch.randint(1, 50, (8, 6), generator=torch.Generator().manual_seed(0))
    text = ST.generate(tiny, prompts[:, :3], 9)  # the model's own greedy text: steering can only hurt it
    rows = ST.sweep(hook, lambda s: ST.add_vector_hook(ST.feature_vector(sae, 0), s), [0, 2, 5, 10],
                    lambda h: ST.target_logit_diff(tiny, prompts, a, b, h),
                    lambda h: ST.heldout_loss(tiny, text, h))
    assert rows[0]["d_behaviour"] == pytest.approx(0, abs=1e-5) and rows[0]["d_damage"] == pytest.approx(0, abs=1e-5)
    beh = [r["behaviour"] for r in rows]
    assert beh == sorted(beh) and rows[-1]["d_behaviour"] > 1
    assert rows[-1]["d_damage"] > 0
    lp = [ST.target_logprob(tiny, prompts, [a], [(hook, ST.add_vector_hook(ST.feature_vector(sae, 0), s))])
          for s in (0, 10)]
    assert lp[1] > lp[0]
    out = ST.generate(tiny, prompts[:2, :3], 3, [(hook, ST.add_vector_hook(ST.feature_vector(sae, 0), 50.0))])
    assert out.shape == (2, 6) and (out[:, 3:] == a).all()


def test_heldout_loss_leaves_out_padding(tiny):
    t = torch.tensor([[1, 2, 3, 0, 0]])
    full = ST.heldout_loss(tiny, t)
    assert ST.heldout_loss(tiny, t, pad_id=0) != pytest.approx(full)
    assert ST.heldout_loss(tiny, t[:, :3]) == pytest.approx(ST.heldout_loss(tiny, t, pad_id=0), abs=1e-5)


def test_bad_input(tiny):
    sae = axis_sae(4)
    with pytest.raises(InputError, match="latent"):
        ST.clamp_latent_hook(sae, 8, 1.0)
    with pytest.raises(InputError, match="1-D"):
        ST.add_vector_hook(torch.zeros(2, 3))
    with pytest.raises(InputError, match="dimension"):
        ST.add_vector_hook(torch.zeros(3))(torch.zeros(1, 2, 4))
    with pytest.raises(InputError, match="position"):
        ST.add_vector_hook(torch.zeros(4), positions=[7])(torch.zeros(1, 2, 4))
    with pytest.raises(InputError, match="no activation"):
        ST.diff_of_means(tiny, "blocks.9.hook_resid_pre", torch.tensor([[1, 2]]), torch.tensor([[1, 3]]))
    with pytest.raises(InputError, match="strengths"):
        ST.sweep("hook_embed", lambda s: None, [], lambda h: 0.0, lambda h: 0.0)


def test_behaviour_at_equal_damage():
    rows = [{"d_damage": 0.1, "d_behaviour": 1.0}, {"d_damage": 0.3, "d_behaviour": 2.0}]
    assert ST.behaviour_at_damage(rows, 0.05) == pytest.approx(0.5)
    assert ST.behaviour_at_damage(rows, 0.2) == pytest.approx(1.5)
    assert ST.behaviour_at_damage(rows, 1.0) != ST.behaviour_at_damage(rows, 1.0)  # nan beyond the sweep
    with pytest.raises(InputError, match="sweep"):
        ST.behaviour_at_damage([{"strength": 1}], 0.1)

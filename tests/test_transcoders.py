"""Transcoders (Dunefsky et al. 2024): loss, splice, input-invariant connections, attributions."""

import pytest
import torch

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import sae as S
from mi_course.methods import sae_metrics as M
from mi_course.methods import transcoders as T

TINY = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=16, d_vocab=50, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard")


@pytest.fixture(scope="module")
def tiny():
    model = zoo.build(TINY, seed=0)
    model.eval()
    return model


pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_splice_and_evaluate_on_a_tiny_model(tiny):
    tokens = torch.randint(0, 50, (48, 16), generator=torch.Generator().manual_seed(1))
    tc = T.make_transcoder(tiny, 1, 64, "topk", k=8)
    assert (tc.hook_name, tc.output_hook_name) == ("blocks.1.mlp.hook_in", "blocks.1.hook_mlp_out")
    buf = S.ActivationBuffer(tiny, tc.hook_name, tokens, output_hook_name=tc.output_hook_name,
                             buffer_tokens=512, model_batch=8)
    x, y = buf.next_batch(128)
    S.set_input_scale(tc, buf)
    before, parts = T.transcoder_loss(tc, x, y)
    assert parts["l0"] == 8
    S.train_sae(tc, buf, steps=80, batch_size=128, lr=3e-3, progress=False)
    after, _ = T.transcoder_loss(tc, x, y)
    assert after < before
    out = T.evaluate(tiny, tc, tokens[:8])
    assert out["l0"] == 8 and out["explained_variance"] > 0
    # splice_hooks is the splice spliced_losses measures
    spl = M.spliced_losses(tiny, tc, tokens[:8])
    with torch.no_grad():
        logits = tiny.run_with_hooks(tokens[:8], fwd_hooks=T.splice_hooks(tc)).log_softmax(-1)
    nll = -logits[:, :-1].gather(-1, tokens[:8, 1:, None]).mean()
    assert float(nll) == pytest.approx(spl["spliced"], rel=1e-4)


def test_connections_and_attributions_are_exact_through_the_layernorm():
    """Later pre-activation = bias part + sum over earlier latents of their attributions, when the
    residual stream holds only the earlier latents' writes (LayerNorm done by hand)."""
    g = torch.Generator().manual_seed(0)
    early = S.Transcoder(8, 12, 8, architecture="relu", seed=1)
    late = S.Transcoder(8, 6, 8, architecture="relu", seed=2)
    with torch.no_grad():
        late.W_enc.copy_(torch.randn(8, 6, generator=g))
        late.b_enc.copy_(torch.randn(6, generator=g))
        late.input_scale.fill_(1.7)
        early.output_scale.fill_(0.5)
    w, b = torch.rand(8, generator=g) + 0.5, torch.randn(8, generator=g)
    f = torch.rand(5, 12, generator=g) * (torch.rand(5, 12, generator=g) < 0.4)
    r = f @ (early.W_dec / early.output_scale)                       # [pos, d] the residual stream
    mu, scale = r.mean(-1, keepdim=True), ((r - r.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()
    x_in = (r - mu) / scale * w + b                                  # ln2(r)
    pre = late.pre_activations(x_in * late.input_scale)              # [pos, 6]
    conn = T.connections(early, late, ln_weight=w)
    for j in range(6):
        att = T.attributions(f, conn, j, ln_scale=scale[:, 0])
        bias_part = (b @ late.W_enc[:, j]) * late.input_scale + late.b_enc[j]
        assert torch.allclose(att.sum(-1) + bias_part, pre[:, j].detach(), atol=1e-4)
    # without LayerNorm and centring: the plain decoder . encoder product
    plain = T.connections(early, late, center=False)
    assert torch.allclose(plain, (early.W_dec / 0.5) @ late.W_enc * 1.7, atol=1e-5)


def test_de_embedding_and_logit_effect_shapes(tiny):
    tc = T.make_transcoder(tiny, 0, 32, "relu")
    de = T.de_embedding(tiny, tc, layer=0)
    assert de.shape == (50, 32)
    assert T.logit_effect(tiny, tc).shape == (32, 50)


def test_bad_input(tiny):
    sae = S.SparseAutoencoder(16, 32, "relu")
    with pytest.raises(InputError, match="transcoder"):
        T.splice_hooks(sae)
    with pytest.raises(InputError, match="hook_name"):
        T.splice_hooks(S.Transcoder(16, 32))
    with pytest.raises(InputError, match="layer"):
        T.make_transcoder(tiny, 2, 32)
    with pytest.raises(InputError, match="ln_weight"):
        T.connections(sae, S.Transcoder(16, 8), ln_weight=torch.ones(3))
    with pytest.raises(InputError, match="latent"):
        T.attributions(torch.zeros(2, 32), torch.zeros(32, 8), 8)
    with pytest.raises(InputError, match="same batch"):
        T.transcoder_loss(S.Transcoder(16, 8), torch.zeros(3, 16), torch.zeros(2, 16))


def test_training_resumes_from_a_checkpoint():
    x = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))
    saved = {}

    def keep(step, sae, opt_state, cfg):
        saved.update(step=step, state={k: v.clone() for k, v in sae.state_dict().items()}, opt=opt_state)

    tc = S.Transcoder(8, 16, 8, architecture="topk", k=4)
    S.train_sae(tc, S.TensorSource(x, x * 2), steps=10, batch_size=64, log_every=1, progress=False,
                checkpoint_every=5, on_checkpoint=keep)
    assert saved["step"] == 5 and saved["opt"]["state"]
    again = S.Transcoder(8, 16, 8, architecture="topk", k=4)
    again.load_state_dict(saved["state"])
    hist = S.train_sae(again, S.TensorSource(x, x * 2), steps=10, batch_size=64, log_every=1, progress=False,
                       start_step=5, optimizer_state=saved["opt"], history=[])
    assert [h["step"] for h in hist] == [6, 7, 8, 9, 10]


@pytest.mark.slow
def test_transcoder_recipe_smoke(tmp_path):
    from mi_course.training import transcoder_recipe as R

    card = R.train_and_save(steps=3, folder=tmp_path, progress=False, checkpoint_every=2)
    assert not (tmp_path / "resume.pt").exists() and (tmp_path / "card.json").exists()
    assert card.kind == "transcoder" and card.output_hook_name == "blocks.1.hook_mlp_out"
    assert card.figures["l0"]["value"] == pytest.approx(32) and "sae_on_mlp_out" in card.figures["ce_loss_recovered"]

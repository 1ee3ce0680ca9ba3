import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week14
from mi_course.methods import transcoders as T


pytestmark = pytest.mark.usefixtures("one_thread")


def test_at_least_eight_exercises():
    assert len(week14.EXERCISES) >= 8


@pytest.mark.parametrize("ex_id", sorted(week14.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week14.EXERCISES[ex_id])


def test_forward_with_a_fixed_k_fails():
    def fixed_k(x, W_enc, b_enc, W_dec, b_dec, k):
        f = week14._topk(x @ W_enc + b_enc, 3)
        return f @ W_dec + b_dec, f

    with pytest.raises(AssertionError):
        week14.check_transcoder_forward(fixed_k, seed=0)


def test_the_splice_is_the_one_spliced_losses_measures():
    """The reference splice is the package's splice_hooks, which sae_metrics.spliced_losses uses too."""
    from mi_course.methods import sae_metrics as M

    case = week14._splice_cases(0)[0].kwargs
    logits = week14._splice_reference(**case).log_softmax(-1)
    nll = float(-logits[:, :-1].gather(-1, case["tokens"][:, 1:, None]).mean())
    assert nll == pytest.approx(M.spliced_losses(case["model"], case["tc"], case["tokens"])["spliced"], rel=1e-4)


def test_a_splice_that_ignores_the_layer_fails():
    def always_mlp0(model, tc, tokens):
        tc0 = week14._random_transcoder(0, tc.d_sae, torch.Generator().manual_seed(0))
        tc0.load_state_dict(tc.state_dict())
        return week14._splice_reference(model, tc0, tokens)

    with pytest.raises(AssertionError):
        week14.check_spliced_logits(always_mlp0, seed=0)


@pytest.mark.parametrize("data_seed", [0, 1403])  # 1403: the notebook's hidden test
def test_training_outcome_of_the_reference_is_all_ones(data_seed):
    assert week14.training_outcome(week14._reference_train, data_seed).tolist() == [1.0, 1.0, 1.0]


def test_a_loop_that_never_zeroes_gradients_fails():
    def no_zero_grad(sample, d_in, d_sae, d_out, steps, l1_coeff=0.3, lr=3e-3, seed=0):
        torch.manual_seed(seed)
        W_enc = (torch.randn(d_in, d_sae) * 0.1).requires_grad_()
        W_dec = (torch.randn(d_sae, d_out) * 0.1).requires_grad_()
        b_enc, b_dec = torch.zeros(d_sae, requires_grad=True), torch.zeros(d_out, requires_grad=True)
        opt = torch.optim.SGD([W_enc, b_enc, W_dec, b_dec], lr=lr)
        for _ in range(steps):
            x, y = sample(256)
            f = torch.relu(x @ W_enc + b_enc)
            loss = (y - f @ W_dec - b_dec).pow(2).sum(-1).mean() + l1_coeff * (f * W_dec.norm(dim=-1)).sum(-1).mean()
            loss.backward()
            opt.step()
        return {"W_enc": W_enc.detach(), "b_enc": b_enc.detach(), "W_dec": W_dec.detach(), "b_dec": b_dec.detach()}

    with pytest.raises(AssertionError):
        week14.check_train_transcoder(no_zero_grad, seed=0)


def test_the_checked_pieces_rebuild_the_package_methods():
    """connections / de-embedding / attributions as the students write them equal the package's, on a
    transcoder pair of the tiny model (input_scale and output_scale folded in)."""
    g = torch.Generator().manual_seed(0)
    model = week14.tiny_model()
    early = week14._random_transcoder(0, 20, g, output_scale=2.0)
    late = week14._random_transcoder(1, 16, g, input_scale=0.7)
    w = model.blocks[1].ln2.weight.detach()
    conn = week14._conn_reference(early.W_dec / early.output_scale, late.W_enc * late.input_scale, w)
    assert torch.allclose(conn, T.connections(early, late, ln_weight=w), atol=1e-5)
    w0 = model.blocks[0].ln2.weight.detach()
    de = week14._deemb_reference(model.W_E.detach(), early.W_enc * early.input_scale, w0)
    assert torch.allclose(de, T.de_embedding(model, early, layer=0), atol=1e-5)
    tokens = week14._tokens(g)
    att = T.direct_attributions(model, early, late, tokens, 3)
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in (early.hook_name, "blocks.1.hook_resid_mid"))
    r = cache["blocks.1.hook_resid_mid"][0]
    scale = ((r - r.mean(-1, keepdim=True)).pow(2).mean(-1) + model.cfg.eps).sqrt()
    mine = week14._att_reference(early.encode(cache[early.hook_name][0]), conn, 3, scale)
    assert torch.allclose(mine[1:], att[0, 1:], atol=1e-5)

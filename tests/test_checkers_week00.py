import pytest
import torch

from checker_harness import assert_checker_is_honest
from mi_course.checking import week00
from mi_course.errors import InputError
from mi_course.methods import toolkit


@pytest.mark.parametrize("ex_id", sorted(week00.EXERCISES))
def test_checker_is_honest(ex_id):
    assert_checker_is_honest(week00.EXERCISES[ex_id])


def test_patching_is_local_and_errors_are_clear(attn_model):
    from mi_course.data.induction import repeated_random_tokens

    clean = repeated_random_tokens(2, 10, 128, seed=0)
    corrupt = clean.clone()
    corrupt[:, 1:11] = torch.randint(1, 128, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        corrupt_logits = attn_model(corrupt)
    patched = toolkit.patch_resid_pre(attn_model, clean, corrupt, 1, 15)
    # causal: positions before the patch are untouched; the patched position changes
    assert torch.allclose(patched[:, :15], corrupt_logits[:, :15], atol=1e-5)
    assert not torch.allclose(patched[:, 15], corrupt_logits[:, 15], atol=1e-3)
    with pytest.raises(InputError, match="pos"):
        toolkit.patch_resid_pre(attn_model, clean, corrupt, 0, 99)
    with pytest.raises(InputError, match="same shape"):
        toolkit.patch_resid_pre(attn_model, clean, corrupt[:, :5], 0, 1)


def test_hook_exercise_claims(attn_model):
    """The numbers week 00's prose states about the hook exercises (repeated tokens, seed 0)."""
    from mi_course.data.induction import repeated_random_tokens
    from mi_course.methods.induction import per_token_loss, repeated_half_losses

    rep = repeated_random_tokens(n_batch=8, seq_len=20, d_vocab=128, seed=0)

    def second(logits):
        return repeated_half_losses(per_token_loss(logits, rep), 20)[1]

    with torch.no_grad():
        clean = second(attn_model(rep))
    assert 0.40 < clean < 0.46
    scaled = {f: second(toolkit.scale_head(attn_model, rep, 1, 1, f)) for f in (0, 0.5, 1, 2, 3)}
    assert abs(scaled[1] - clean) < 1e-4
    assert 0.88 < scaled[0] < 0.96 and 0.49 < scaled[0.5] < 0.56 and 0.54 < scaled[2] < 0.62 and 0.75 < scaled[3] < 0.85
    assert 4.3 < second(toolkit.pattern_to_bos(attn_model, rep, 0, 3)) < 4.6
    assert 3.1 < second(toolkit.pattern_to_bos(attn_model, rep, 1, 1)) < 3.4
    assert 1.7 < second(toolkit.pattern_to_bos(attn_model, rep, 0, 0)) < 1.9
    bos = toolkit.attention_to_bos(attn_model, rep)
    assert bos.shape == (2, 4) and 0.13 < bos[1].min() and bos[1].max() < 0.33 and bos[0].max() < 0.13

    def zero_03(z, hook):
        z = z.clone()
        z[:, :, 3] = 0.0
        return z

    prompt, truth = rep[:2, :26], rep[:2, 26:36]
    plain = toolkit.generate_with_hooks(attn_model, prompt, 10)[:, 26:]
    ablated = toolkit.generate_with_hooks(attn_model, prompt, 10, [("blocks.0.attn.hook_z", zero_03)])[:, 26:]
    assert int((plain == truth).sum()) == 17 and int((ablated == truth).sum()) == 2


def test_hooks_are_removed_and_errors_are_clear(attn_model):
    from mi_course.data.induction import repeated_random_tokens

    t = repeated_random_tokens(1, 5, 128, seed=0)
    with torch.no_grad():
        base = attn_model(t)
    hooked, clean = toolkit.hooked_then_clean(attn_model, t, "blocks.1.attn.hook_z", lambda z, hook: z * 0)
    assert not torch.allclose(hooked, base, atol=1e-3) and torch.allclose(clean, base, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(attn_model(t), base, atol=1e-5)  # nothing left attached
    with pytest.raises(InputError, match="does not exist"):
        toolkit.scale_head(attn_model, t, 2, 0, 1.0)
    with pytest.raises(InputError, match="context"):
        toolkit.generate_with_hooks(attn_model, t, 100)
    with pytest.raises(InputError, match="n_new"):
        toolkit.generate_with_hooks(attn_model, t, -1)

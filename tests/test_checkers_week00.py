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

"""One helper for hook names (mi_course.zoo.hooks), used wherever the package names a hook point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mi_course import zoo
from mi_course.errors import InputError
from mi_course.methods import components
from mi_course.methods.activation_patching import ACTIVATIONS
from mi_course.zoo import hooks as hk

PACKAGE = Path(zoo.__file__).resolve().parents[1]


def test_names():
    assert hk.resid_pre(1) == "blocks.1.hook_resid_pre"
    assert hk.z(0) == "blocks.0.attn.hook_z" and hk.pattern(2) == "blocks.2.attn.hook_pattern"
    assert hk.mlp_post(3) == "blocks.3.mlp.hook_post" and hk.attn_out(0) == "blocks.0.hook_attn_out"
    assert hk.name("q", 1) == "blocks.1.attn.hook_q" and hk.at_layers("mlp_out", [0, 2]) == [
        "blocks.0.hook_mlp_out", "blocks.2.hook_mlp_out"]
    keep = hk.only("pattern", "z")
    assert keep("blocks.1.attn.hook_pattern") and keep("blocks.0.attn.hook_z")
    assert not keep("blocks.1.attn.hook_attn_scores") and not keep("blocks.0.hook_resid_pre")


@pytest.mark.parametrize("bad", [-1, 1.0, "1", None, True])
def test_bad_layer_is_a_clear_error(bad):
    with pytest.raises(InputError, match="layer"):
        hk.resid_pre(bad)


def test_unknown_site_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown activation 'result'.*resid_pre"):
        hk.name("result", 0)


def test_components_and_patching_name_places_from_the_same_table():
    for kind, site in components.SITE_OF_KIND.items():
        assert site in hk.SITES
    assert components.head(1, 2).hook_name == hk.z(1) and components.neuron(0, 5).hook_name == hk.mlp_post(0)
    for name, site in ACTIVATIONS.items():
        assert site is hk.SITES[name]


def test_every_name_exists_in_a_zoo_model():
    model = zoo.load("ioi-lm")
    known = set(model.hook_dict)
    for site in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "q", "k", "v", "z", "pattern",
                 "mlp_post", "mlp_in", "mlp_pre"):
        assert hk.name(site, 0) in known, site
    for name in (hk.EMBED, hk.POS_EMBED, hk.FINAL_IN, hk.FINAL_SCALE):
        assert name in known, name


def test_no_hook_name_is_spelled_by_hand_in_the_methods():
    """Methods, viz and the zoo's model code build hook names with mi_course.zoo.hooks (docstrings and
    hints to students may still show a name)."""
    spelled = re.compile(r"""f?["']blocks\.(\{|\d)[^"']*hook_|["']ln_final\.hook_""")
    found = []
    for folder in ("methods", "viz"):
        for path in (PACKAGE / folder).rglob("*.py"):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                if spelled.search(code) and "InputError" not in code and not code.strip().startswith(('"', "'")):
                    found.append(f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}")
    assert found == []

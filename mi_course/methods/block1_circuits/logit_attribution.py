"""Direct logit attribution (DLA; Elhage et al. 2021, Wang et al. 2023 section 3.1).

The residual stream at the last position is a sum of what each component wrote: the
embeddings, every head, every MLP (and constant biases). The final LayerNorm is linear once its
scale is frozen at the value of the actual run, so each component's share of the logit
difference is its output, centred and divided by that scale, times the LN weight, dotted with
the *logit-difference direction* ``W_U[:, IO] - W_U[:, S]``. The shares add up exactly to the
logit difference.
"""

from __future__ import annotations

import torch

from mi_course.errors import InputError, expect_shape
from mi_course.zoo import hooks as hk
from mi_course import validation as check


def logit_diff_directions(model, correct: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """``W_U[:, correct] - W_U[:, wrong]`` per prompt: ``[batch, d_model]``."""
    W_U = model.W_U.detach()
    check.token_ids("correct", correct, W_U.shape[1])
    check.token_ids("wrong", wrong, W_U.shape[1], correct.shape[0])
    return (W_U[:, correct] - W_U[:, wrong]).T


def dla(resid_stack: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of each component's dot product with its prompt's direction.

    resid_stack ``[component, batch, d_model]`` (already through the frozen final LayerNorm),
    directions ``[batch, d_model]``. Returns ``[component]``.
    """
    expect_shape("resid_stack", resid_stack, (None, None, None), "Expected [component, batch, d_model].")
    expect_shape("directions", directions, (resid_stack.shape[1], resid_stack.shape[2]),
                 "Expected one direction per prompt, [batch, d_model].")
    return torch.einsum("cbd,bd->cb", resid_stack, directions).mean(-1)


def _at(t: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    return t[torch.arange(t.shape[0]), positions]


@torch.no_grad()
def residual_components(model, tokens: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """``(stack [component, batch, d_model], labels, scale [batch, 1])`` at ``positions``.

    Components: ``embed`` (token + position), every head ``L.H``, ``MLP L``, and ``bias``
    (the attention output biases); the stack sums to the input of the final LayerNorm.
    """
    check.tokens("tokens", tokens, model)
    check.positions("positions", positions, tokens.shape[1], tokens.shape[0])
    names = {hk.resid_pre(0), hk.FINAL_IN, hk.FINAL_SCALE}
    for layer in range(model.cfg.n_layers):
        names |= {hk.z(layer), hk.mlp_out(layer)}
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    parts, labels = [_at(cache[hk.resid_pre(0)], positions)], ["embed"]
    bias = torch.zeros_like(parts[0])
    for layer in range(model.cfg.n_layers):
        z = _at(cache[hk.z(layer)], positions)  # [b, head, d_head]
        heads = torch.einsum("bhe,hed->hbd", z, model.W_O[layer].detach())
        parts += list(heads)
        labels += [f"{layer}.{h}" for h in range(model.cfg.n_heads)]
        bias = bias + model.b_O[layer].detach()
        if not getattr(model.cfg, "attn_only", False):
            parts.append(_at(cache[hk.mlp_out(layer)], positions))
            labels.append(f"MLP{layer}")
    parts.append(bias)
    labels.append("bias")
    stack = torch.stack(parts)
    total = _at(cache[hk.FINAL_IN], positions)
    if not torch.allclose(stack.sum(0), total, atol=1e-3):
        raise InputError("the components do not add up to the residual stream; this model's architecture is "
                         "not supported by residual_components")
    return stack, labels, _at(cache[hk.FINAL_SCALE], positions)


def apply_final_ln(model, stack: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Centre each component, divide by the run's final-LN scale ``[batch, 1]`` and apply the
    LN weight (the LN bias is a constant, left out)."""
    w = model.ln_final.w.detach() if hasattr(model.ln_final, "w") else 1.0
    centred = stack - stack.mean(-1, keepdim=True)
    return centred / scale * w


@torch.no_grad()
def dla_by_component(model, tokens, correct, wrong, positions) -> tuple[torch.Tensor, list[str]]:
    """Each component's direct share of the mean logit difference: ``([component], labels)``.

    The last entry, ``"constant"``, holds the final LN bias and the unembedding bias, so the
    entries add up to the mean logit difference.
    """
    dirs = logit_diff_directions(model, correct, wrong)
    check.tokens("tokens", tokens, model)
    if correct.shape[0] != tokens.shape[0]:
        raise InputError(f"correct and wrong need one token per prompt: {correct.shape[0]} for {tokens.shape[0]} prompts")
    stack, labels, scale = residual_components(model, tokens, positions)
    values = dla(apply_final_ln(model, stack, scale), dirs)
    const = model.ln_final.b.detach() @ dirs.T if hasattr(model.ln_final, "b") else torch.zeros(len(correct))
    if hasattr(model, "b_U"):
        const = const + model.b_U.detach()[correct] - model.b_U.detach()[wrong]
    return torch.cat([values, const.mean()[None]]), labels + ["constant"]


@torch.no_grad()
def dla_by_head(model, tokens, correct, wrong, positions) -> torch.Tensor:
    """Direct logit attribution of every head: ``[layer, head]``."""
    values, labels = dla_by_component(model, tokens, correct, wrong, positions)
    idx = [i for i, lab in enumerate(labels) if lab[0].isdigit()]
    return values[idx].reshape(model.cfg.n_layers, model.cfg.n_heads)


@torch.no_grad()
def dla_by_layer(model, tokens, correct, wrong, positions) -> tuple[torch.Tensor, list[str]]:
    """Embeddings, each attention layer (all heads) and each MLP: ``([n], labels)``."""
    values, labels = dla_by_component(model, tokens, correct, wrong, positions)
    out, names = [float(values[0])], ["embed"]
    for layer in range(model.cfg.n_layers):
        out.append(float(sum(values[i] for i, lab in enumerate(labels) if lab.startswith(f"{layer}."))))
        names.append(f"attn {layer}")
        if f"MLP{layer}" in labels:
            out.append(float(values[labels.index(f"MLP{layer}")]))
            names.append(f"MLP {layer}")
    return torch.tensor(out), names

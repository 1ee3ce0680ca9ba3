"""Checkers for week 01: Zoom In (features, circuits and universality in a tiny conv net)."""

from __future__ import annotations

import math

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.methods import zoom_in


def _tuning_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for units, n in [(3, 8), (6, 16)]:
        ang = torch.arange(n) * (2 * math.pi / n)
        pref = torch.rand(units, 1, generator=g) * 2 * math.pi
        width = 0.5 + torch.rand(units, 1, generator=g)
        floor = 1 + 2 * torch.rand(units, 1, generator=g)  # every unit has a baseline response
        curves = floor + 2 * torch.exp((torch.cos(ang - pref) - 1) / width ** 2)
        curves = curves + 0.05 * torch.rand(units, n, generator=g)
        curves[0] = floor[0]  # one untuned unit
        out.append(Case(f"seed {seed}, {units} units x {n} angles", {"tuning_curves": curves}))
    return out


def _no_floor(tuning_curves):
    n = tuning_curves.shape[-1]
    ang = torch.arange(n) * (2 * math.pi / n)
    r = tuning_curves.clamp_min(0)
    return ((r * torch.exp(1j * ang)).sum(-1).abs() / r.sum(-1).clamp_min(1e-9)).float()


def _max_over_mean(tuning_curves):
    r = tuning_curves - tuning_curves.amin(-1, keepdim=True)
    return (r.amax(-1) - r.mean(-1)) / r.amax(-1).clamp_min(1e-9)


SELECTIVITY = Exercise(
    id="w01_selectivity",
    title="selectivity",
    reference=zoom_in.selectivity,
    cases=_tuning_cases,
    mistakes=[
        Mistake("baseline kept", _no_floor,
                "subtract each unit's minimum response first: a unit that fires at 1.0 for every angle plus a small "
                "bump is not very selective, but its raw curve makes the vector sum look small only by accident."),
        Mistake("peak vs mean", _max_over_mean,
                "use the circular variance: the length of the vector sum of the responses at their angles, "
                "divided by the sum of the responses (after subtracting the minimum)."),
    ],
    hint="remove each unit's floor, place each response as a vector at its stimulus angle on the circle, and compare "
         "the length of the vector sum with the total response. Self-check: a flat curve must give 0, a response at "
         "one angle only gives 1.",
    atol=1e-4,
)


def check_selectivity(fn, seed: int | None = None) -> bool:
    """Check ``selectivity(tuning_curves [units, n]) -> [units]``."""
    return check(SELECTIVITY, fn, seed)


def _match_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for ua, ub, n in [(3, 4, 8), (8, 6, 16)]:
        b = torch.rand(ub, n, generator=g) * 3
        perm = torch.randint(0, ub, (ua,), generator=g)
        a = 2 * b[perm] + 0.3 * torch.rand(ua, n, generator=g) + 1  # scaled, shifted, noisy copies
        out.append(Case(f"seed {seed}, {ua} units vs {ub} units, {n} angles", {"tuning_a": a, "tuning_b": b}))
    return out


def _dot_not_corr(tuning_a, tuning_b):
    corr = tuning_a @ tuning_b.T
    best = corr.max(-1)
    return best.indices, best.values


def _no_centering(tuning_a, tuning_b):
    a = tuning_a / tuning_a.norm(dim=-1, keepdim=True)
    b = tuning_b / tuning_b.norm(dim=-1, keepdim=True)
    best = (a @ b.T).max(-1)
    return best.indices, best.values


BEST_MATCH = Exercise(
    id="w01_best_match",
    title="best_match",
    reference=zoom_in.best_match,
    cases=_match_cases,
    mistakes=[
        Mistake("dot product", _dot_not_corr,
                "compare tuning *shapes*: use the correlation (centre each curve, then normalise it), not the raw dot product."),
        Mistake("cosine without centring", _no_centering,
                "subtract each curve's mean before normalising: otherwise every pair of positive curves looks similar."),
    ],
    hint="correlation compares the shape of two curves, not their baseline or size: remove both from every row first; "
         "then all pairs are one matrix product. Self-check: a curve matched against itself scores 1.",
    atol=1e-4,
)


def check_best_match(fn, seed: int | None = None) -> bool:
    """Check ``best_match(tuning_a, tuning_b) -> (index [units_a], correlation [units_a])``."""
    return check(BEST_MATCH, fn, seed)


# -- 3. tuning from activations ----------------------------------------------------------------
def _acts_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, u, hw in [(3, 2, 4), (7, 5, 6)]:
        acts = torch.relu(torch.randn(n, u, hw, hw + 1, generator=g))
        out.append(Case(f"seed {seed}, {n} stimuli x {u} units x {hw}x{hw + 1}", {"acts": acts}))
    return out


UNIT_TUNING = Exercise(
    id="w01_unit_tuning",
    title="unit_tuning",
    reference=zoom_in.unit_tuning,
    cases=_acts_cases,
    mistakes=[
        Mistake("mean over space", lambda acts: acts.mean(dim=(-2, -1)).T,
                "you averaged over the image; a unit responds to a stimulus if it fires strongly *anywhere*: take the max over space."),
        Mistake("not transposed", lambda acts: acts.amax(dim=(-2, -1)),
                "return one row per unit, [units, n_stimuli]: transpose."),
        Mistake("max over units", lambda acts: acts.amax(dim=(1, -1)).T,
                "take the max over the two spatial dimensions (the last two), not over units."),
    ],
    hint="a unit responds to a stimulus if it fires strongly somewhere on the image: which reduction over the two "
         "spatial dimensions keeps that? The result has one row per unit.",
)


def check_unit_tuning(fn, seed: int | None = None) -> bool:
    """Check ``unit_tuning(acts) -> [units, n_stimuli]``."""
    return check(UNIT_TUNING, fn, seed)


# -- 4. dead units -----------------------------------------------------------------------------
def _dead_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, u, threshold in [(4, 6, 0.0), (9, 10, 0.3 + 0.1 * (seed % 3))]:
        acts = torch.relu(torch.randn(n, u, 5, 5, generator=g))
        dead = torch.randperm(u, generator=g)[:2]
        acts[:, dead] = 0.0
        weak = torch.randperm(u, generator=g)[:2]
        acts[:, weak] = acts[:, weak].clamp(max=0.25) * (torch.rand(1, generator=g) > 0.5)  # weak units: fire a little
        acts[0, weak[:1], 0, 0] = 0.2
        rare = [int(i) for i in range(u) if i not in dead.tolist() + weak.tolist()][0]
        acts[:, rare] = 0.0
        acts[-1, rare, 2, 2] = 3.0  # fires once, strongly: alive, with a tiny mean
        out.append(Case(f"seed {seed}, {u} units, threshold {threshold}", {"acts": acts, "threshold": threshold}))
    return out


DEAD_UNITS = Exercise(
    id="w01_dead_units",
    title="dead_units",
    reference=zoom_in.dead_units,
    cases=_dead_cases,
    mistakes=[
        Mistake("ignores threshold", lambda acts, threshold: zoom_in.dead_units(acts, 0.0),
                "you compared with 0 whatever the threshold: a unit is dead if it never exceeds `threshold`."),
        Mistake("mean", lambda acts, threshold: acts.mean(dim=(0, 2, 3)) <= threshold,
                "a unit that fires rarely is not dead: use its *largest* activation over every image and position."),
        Mistake("strictly below", lambda acts, threshold: acts.amax(dim=(0, 2, 3)) < threshold,
                "a unit whose largest activation equals the threshold (e.g. exactly 0) never fires above it: use <=."),
    ],
    hint="the largest activation of each unit over images and positions, compared (<=) with the threshold.",
)


def check_dead_units(fn, seed: int | None = None) -> bool:
    """Check ``dead_units(acts, threshold) -> bool [units]``."""
    return check(DEAD_UNITS, fn, seed)


# -- 5. preferred angle ------------------------------------------------------------------------
def _angle_cases(seed: int) -> list[Case]:
    return [Case(c.name + f", period {p}", {"tuning_curves": c.kwargs["tuning_curves"][1:], "period": p})
            for c, p in zip(_tuning_cases(seed), [math.pi, 2 * math.pi])]


def _argmax_angle(tuning_curves, period):
    n = tuning_curves.shape[-1]
    return tuning_curves.argmax(-1).float() * (period / n)


def _full_circle(tuning_curves, period):
    n = tuning_curves.shape[-1]
    ang = torch.arange(n) * (2 * math.pi / n)
    vec = ((tuning_curves - tuning_curves.amin(-1, keepdim=True)) * torch.exp(1j * ang)).sum(-1)
    return torch.remainder(torch.angle(vec), 2 * math.pi)


PREFERRED_ANGLE = Exercise(
    id="w01_preferred_angle",
    title="preferred_angle",
    reference=zoom_in.preferred_angle,
    cases=_angle_cases,
    mistakes=[
        Mistake("argmax", _argmax_angle,
                "that is the angle of the single largest response; use the direction of the vector sum, which "
                "averages the whole curve and is not limited to the sampled angles."),
        Mistake("period ignored", _full_circle,
                "the vector sum lives on the full circle; map its angle back to [0, period) (multiply by period / 2pi)."),
    ],
    hint="the direction of the same vector sum as in selectivity (floor removed). An angle function returns values in "
         "(-pi, pi]: bring it into a full turn before mapping it to [0, period). Self-check: every "
         "answer lies in [0, period).",
    atol=1e-4,
)


def check_preferred_angle(fn, seed: int | None = None) -> bool:
    """Check ``preferred_angle(tuning_curves, period) -> [units]`` (radians in [0, period))."""
    return check(PREFERRED_ANGLE, fn, seed)


# -- nets for the remaining checks (random, seeded: the methods work on any CurveNet) -----------
def _net(seed: int) -> "zoom_in.CurveNet":
    torch.manual_seed(1000 + seed)
    net = zoom_in.CurveNet()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# -- 6. feature visualisation ------------------------------------------------------------------
def _fv_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    net = _net(seed)
    u1, u2 = int(torch.randint(0, 8, (1,), generator=g)), int(torch.randint(0, 16, (1,), generator=g))
    return [Case(f"seed {seed}, layer 1 unit {u1}, 12 steps, lr 1", {"net": net, "layer": 1, "unit": u1, "steps": 12, "lr": 1.0, "seed": seed}),
            Case(f"seed {seed}, layer 2 unit {u2}, 8 steps, lr 3", {"net": net, "layer": 2, "unit": u2, "steps": 8, "lr": 3.0, "seed": seed + 1})]


def _fv_variant(net, layer, unit, steps, lr, seed, *, sign=1.0, clamp=True, l2=0.01):
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(1, 1, 24, 24, generator=g)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            acts = net.layer1(x) if layer == 1 else net.layer2(x)
            obj = acts[0, unit].amax() - l2 * x.pow(2).sum()
            (grad,) = torch.autograd.grad(obj, x)
        x = x + sign * lr * grad
        if clamp:
            x = x.clamp(-1, 1)
    return x.detach()


FEATURE_VIS = Exercise(
    id="w01_feature_visualization",
    title="feature_visualization",
    reference=lambda net, layer, unit, steps, lr, seed: zoom_in.feature_visualization(net, layer, unit, steps, lr, seed=seed),
    cases=_fv_cases,
    mistakes=[
        Mistake("descent", lambda **kw: _fv_variant(**kw, sign=-1.0),
                "you went *down* the gradient (minimising the unit). Gradient ascent: x = x + lr * grad."),
        Mistake("no clamp", lambda **kw: _fv_variant(**kw, clamp=False),
                "clamp the image to [-1, 1] after every step, or it can grow without bound."),
        Mistake("no penalty", lambda **kw: _fv_variant(**kw, l2=0.0),
                "the objective is the unit's max response *minus* 0.01 * sum(x**2): keep the L2 penalty."),
    ],
    hint="follow the Goal's recipe exactly (same generator, start, penalty and clamp): the checker compares images. "
         "You need the gradient with respect to the image, so switch gradients on inside your function "
         "(torch.enable_grad), and step uphill.",
    atol=1e-4,
    rtol=1e-3,
)


def check_feature_visualization(fn, seed: int | None = None) -> bool:
    """Check ``feature_visualization(net, layer, unit, steps, lr, seed) -> [1, 1, 24, 24]``."""
    return check(FEATURE_VIS, fn, seed)


# -- 7. reading a unit off its weights ---------------------------------------------------------
def _kmap_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    return [Case(f"seed {seed}, unit {u}", {"net": _net(seed + k), "unit": u})
            for k, u in enumerate(torch.randint(0, 16, (2,), generator=g).tolist())]


def _kmap_variant(net, unit, *, double=True, positive=True, weight_sel=True):
    t1 = zoom_in.tuning(net, 1, "lines")
    pref, sel = zoom_in.preferred_angle(t1), zoom_in.selectivity(t1)
    w = net.conv2.weight[unit].detach()
    if positive:
        w = w.clamp_min(0)
    k = 2 if double else 1
    vec = (w * ((sel if weight_sel else torch.ones_like(sel)) * torch.exp(k * 1j * pref))[:, None, None]).sum(0)
    return torch.remainder(torch.angle(vec), 2 * math.pi) / k, vec.abs().float()


KERNEL_MAP = Exercise(
    id="w01_kernel_orientation_map",
    title="kernel_orientation_map",
    reference=zoom_in.kernel_orientation_map,
    cases=_kmap_cases,
    mistakes=[
        Mistake("angles not doubled", lambda **kw: _kmap_variant(**kw, double=False),
                "orientations repeat every 180°: 10° and 170° are nearly the same. Average on the doubled angle "
                "(exp(2j*pref)) and halve the result."),
        Mistake("negative weights kept", lambda **kw: _kmap_variant(**kw, positive=False),
                "only excitatory (positive) weights pull an orientation in: clamp the weights at 0 first."),
        Mistake("selectivity ignored", lambda **kw: _kmap_variant(**kw, weight_sel=False),
                "weight each layer-1 unit by its selectivity too: an untuned unit has no orientation to contribute."),
    ],
    hint="orientations repeat every pi, so average them on the doubled angle and halve the direction at the end; "
         "weight each layer-1 unit by the positive part of its weight and by its selectivity. Self-check: every "
         "angle lies in [0, pi).",
    atol=1e-4,
    rtol=1e-3,
)


def check_kernel_orientation_map(fn, seed: int | None = None) -> bool:
    """Check ``kernel_orientation_map(net, unit) -> (angle [5, 5], strength [5, 5])``."""
    return check(KERNEL_MAP, fn, seed)


# -- 8. a circuit by ablation ------------------------------------------------------------------
def _ablation_cases(seed: int) -> list[Case]:
    from mi_course.data import curves

    g = torch.Generator().manual_seed(seed)
    out = []
    for k, n in enumerate((3, 6)):
        images, _ = curves.make_batch(n, 24, torch.Generator().manual_seed(seed * 7 + k))
        out.append(Case(f"seed {seed}, {n} images", {"net": _net(seed + k), "unit": int(torch.randint(0, 16, (1,), generator=g)), "images": images}))
    return out


def _abl_variant(net, unit, images, *, mode="drop"):
    h = torch.nn.functional.max_pool2d(net.layer1(images), 2)
    base = torch.relu(net.conv2(h))[:, unit].amax(dim=(-2, -1)).mean()
    out = torch.zeros(net.conv1.out_channels)
    for c in range(net.conv1.out_channels):
        h2 = h.clone()
        if mode == "keep_only":
            keep = h2[:, c].clone()
            h2.zero_()
            h2[:, c] = keep
        else:
            h2[:, c] = 0.0
        after = torch.relu(net.conv2(h2))[:, unit].amax(dim=(-2, -1)).mean()
        out[c] = after if mode == "after" else base - after
    return out


def _abl_before_pool(net, unit, images):
    out = torch.zeros(net.conv1.out_channels)
    a = net.layer1(images)
    base = torch.relu(net.conv2(torch.nn.functional.max_pool2d(a, 2)))[:, unit].amax(dim=(-2, -1)).mean()
    for c in range(net.conv1.out_channels):
        a2 = a.clone()
        a2[:, c] = 0.0
        out[c] = base - torch.relu(net.conv2(a2))[:, unit].amax(dim=(-2, -1)).mean()
    return out


CHANNEL_ABLATION = Exercise(
    id="w01_channel_ablation_effect",
    title="channel_ablation_effect",
    reference=zoom_in.channel_ablation_effect,
    cases=_ablation_cases,
    mistakes=[
        Mistake("response after, not the drop", lambda **kw: _abl_variant(**kw, mode="after"),
                "return the *drop*: the unit's response without ablation minus its response with the channel zeroed."),
        Mistake("kept only one channel", lambda **kw: _abl_variant(**kw, mode="keep_only"),
                "you zeroed every channel *except* one; zero just the one channel and keep the others."),
        Mistake("no max pool", _abl_before_pool,
                "layer 2 reads layer 1 after a 2x2 max pool: max_pool2d(net.layer1(images), 2), then conv2."),
    ],
    hint="split the network where you intervene: compute layer 1 (with the pooling layer 2 reads) once, then run only "
         "layer 2 on a copy with one channel zeroed. The effect is the drop: original response minus ablated response.",
    atol=1e-4,
    rtol=1e-3,
)


def check_channel_ablation_effect(fn, seed: int | None = None) -> bool:
    """Check ``channel_ablation_effect(net, unit, images) -> [c1]``."""
    return check(CHANNEL_ABLATION, fn, seed)


EXERCISES = {ex.id: ex for ex in [UNIT_TUNING, DEAD_UNITS, PREFERRED_ANGLE, SELECTIVITY, FEATURE_VIS, KERNEL_MAP,
                                  CHANNEL_ABLATION, BEST_MATCH]}

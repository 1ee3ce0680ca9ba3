"""Checkers for week 14: transcoders find interpretable feature circuits (Dunefsky, Chlenski & Nanda 2024).

Each ``check_*`` runs your function against the package's reference
(:mod:`mi_course.methods.transcoders`, :mod:`mi_course.methods.sae_metrics`) on fixed and random
cases, and recognises the common mistakes listed with each exercise. The cases use synthetic
tensors and a tiny 2-layer transformer built on the spot (random weights), so the checkers do not
depend on the week's model: what they check is the method.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401
from mi_course.methods import sae_metrics
from mi_course.methods import transcoders as T

TINY = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=12, d_vocab=40, act_fn="gelu",
            normalization_type="LN", positional_embedding_type="standard")


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@lru_cache(maxsize=1)
def tiny_model():
    """A tiny 2-layer transformer with random weights (the checkers' test bench for hooks)."""
    from mi_course import zoo

    model = zoo.build(TINY, seed=0)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _random_transcoder(layer: int, d_sae: int, g: torch.Generator, architecture: str = "relu", k: int | None = None,
                       output_scale: float = 1.0, input_scale: float = 1.0):
    """A transcoder for MLP ``layer`` of the tiny model with random (not trained) weights, about a third of
    its latents active per token."""
    tc = T.make_transcoder(tiny_model(), layer, d_sae, architecture, k)
    d = TINY["d_model"]
    with torch.no_grad():
        tc.W_enc.copy_(torch.randn(d, d_sae, generator=g) / d ** 0.5)
        tc.b_enc.copy_(torch.randn(d_sae, generator=g) * 0.3 - 0.4)
        tc.W_dec.copy_(torch.randn(d_sae, d, generator=g) * 0.5)
        tc.b_dec.copy_(torch.randn(d, generator=g) * 0.1)
        tc.input_scale.fill_(input_scale)
        tc.output_scale.fill_(output_scale)
    tc.eval()
    for p in tc.parameters():
        p.requires_grad_(False)
    return tc


def _tokens(g: torch.Generator, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, TINY["d_vocab"], (batch, TINY["n_ctx"]), generator=g)


# -- Exercise 1: the transcoder's forward pass -----------------------------------------------------
def _fwd_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for k in ([3, 6] if seed == 0 else [int(torch.randint(2, 8, (1,), generator=g))]):
        d, m = 6, 12
        out.append(Case(f"seed {seed}, k={k}", {
            "x": torch.randn(7, d, generator=g), "W_enc": torch.randn(d, m, generator=g),
            "b_enc": torch.randn(m, generator=g) - 1.0, "W_dec": torch.randn(m, d, generator=g),
            "b_dec": torch.randn(d, generator=g), "k": k}))
    return out


def _topk(pre: torch.Tensor, k: int) -> torch.Tensor:
    vals, idx = torch.relu(pre).topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, vals)


def _fwd_reference(x, W_enc, b_enc, W_dec, b_dec, k):
    f = _topk(x @ W_enc + b_enc, k)
    return f @ W_dec + b_dec, f


def _fwd_centred(x, W_enc, b_enc, W_dec, b_dec, k):
    f = _topk((x - b_dec) @ W_enc + b_enc, k)
    return f @ W_dec + b_dec, f


def _fwd_no_relu(x, W_enc, b_enc, W_dec, b_dec, k):
    vals, idx = (x @ W_enc + b_enc).topk(k, dim=-1)
    f = torch.zeros(x.shape[0], W_enc.shape[1]).scatter(-1, idx, vals)
    return f @ W_dec + b_dec, f


TRANSCODER_FORWARD = Exercise(
    id="w14_transcoder_forward",
    title="transcoder_forward",
    reference=_fwd_reference,
    cases=_fwd_cases,
    mistakes=[
        Mistake("b_dec subtracted from the input", _fwd_centred,
                "a transcoder's b_dec lives in the OUTPUT space (the MLP's output), so the encoder reads x itself, "
                "not x - b_dec as an SAE does."),
        Mistake("TopK without ReLU", _fwd_no_relu,
                "latents are non-negative: ReLU the pre-activations (a negative value among the k largest becomes 0)."),
    ],
    hint="ReLU the encoder's pre-activations, then in each row keep only the k largest and set the rest to zero "
         "(torch.topk gives values and indices); decode those latents, and return the prediction and the latents.",
)


def check_transcoder_forward(fn, seed: int | None = None) -> bool:
    """Check ``transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k) -> (y_hat [n, d_out], f [n, d_sae])``."""
    return check(TRANSCODER_FORWARD, fn, seed)


# -- Exercise 2: the transcoder's loss -------------------------------------------------------------
def _loss_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for coeff in ([0.5, 3.0] if seed == 0 else [float(torch.rand(1, generator=g)) * 4 + 0.1]):
        x, y = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g) * 2
        out.append(Case(f"seed {seed}, l1_coeff={coeff:.2f}", {
            "x": x, "y": y, "y_hat": y + 0.4 * torch.randn(8, 6, generator=g),
            "latents": torch.relu(torch.randn(8, 12, generator=g)),
            "W_dec": torch.randn(12, 6, generator=g) * torch.rand(12, 1, generator=g), "l1_coeff": coeff}))
    return out


def _loss_reference(x, y, y_hat, latents, W_dec, l1_coeff):
    return (y - y_hat).pow(2).sum(-1).mean() + l1_coeff * (latents * W_dec.norm(dim=-1)).sum(-1).mean()


TRANSCODER_LOSS = Exercise(
    id="w14_transcoder_loss",
    title="transcoder_loss",
    reference=_loss_reference,
    cases=_loss_cases,
    mistakes=[
        Mistake("reconstructs the input", lambda x, y, y_hat, latents, W_dec, l1_coeff:
                (x - y_hat).pow(2).sum(-1).mean() + l1_coeff * (latents * W_dec.norm(dim=-1)).sum(-1).mean(),
                "the target is the MLP's OUTPUT y, not its input x: a transcoder predicts y from x (an SAE would "
                "reconstruct x)."),
        Mistake("no decoder norms", lambda x, y, y_hat, latents, W_dec, l1_coeff:
                (y - y_hat).pow(2).sum(-1).mean() + l1_coeff * latents.sum(-1).mean(),
                "weight each latent's activation by the norm of its decoder row ||W_dec[i]|| (otherwise the model "
                "shrinks f and grows W_dec to dodge the penalty)."),
    ],
    hint="mean over tokens of ||y - y_hat||^2 (summed over dimensions), plus l1_coeff * mean over tokens of "
         "sum_i f_i ||W_dec[i]||.",
)


def check_transcoder_loss(fn, seed: int | None = None) -> bool:
    """Check ``transcoder_loss(x, y, y_hat, latents, W_dec, l1_coeff) -> scalar``."""
    return check(TRANSCODER_LOSS, fn, seed)


# -- Exercise 4: the splice: the transcoder in place of the MLP ------------------------------------
def _splice_cases(seed: int) -> list[Case]:
    g = _g(seed)
    layers = [0, 1] if seed == 0 else [int(torch.randint(0, 2, (1,), generator=g))]
    return [Case(f"seed {seed}, MLP {layer}", {
        "model": tiny_model(), "tc": _random_transcoder(layer, 24, g, output_scale=1.5, input_scale=0.8),
        "tokens": _tokens(g)}) for layer in layers]


@torch.no_grad()
def _splice_reference(model, tc, tokens):
    return model.run_with_hooks(tokens, fwd_hooks=T.splice_hooks(tc))


@torch.no_grad()
def _splice_everywhere(model, tc, tokens):
    return model.run_with_hooks(tokens, fwd_hooks=T.splice_hooks(tc, skip_first=False))


@torch.no_grad()
def _splice_from_output(model, tc, tokens):
    def replace(act, hook=None):
        return torch.cat([act[:, :1], tc.decode(tc.encode(act[:, 1:]))], 1)
    return model.run_with_hooks(tokens, fwd_hooks=[(tc.output_hook_name, replace)])


@torch.no_grad()
def _splice_into_input(model, tc, tokens):
    def replace(act, hook=None):
        return torch.cat([act[:, :1], tc.decode(tc.encode(act[:, 1:]))], 1)
    return model.run_with_hooks(tokens, fwd_hooks=[(tc.hook_name, replace)])


SPLICE = Exercise(
    id="w14_spliced_logits",
    title="spliced_logits",
    reference=_splice_reference,
    cases=_splice_cases,
    mistakes=[
        Mistake("position 0 replaced too", _splice_everywhere,
                "leave position 0 (<|endoftext|>, whose activations are huge and were left out of training) as it "
                "is: replace only positions 1: of the MLP's output."),
        Mistake("transcoder fed the MLP's output", _splice_from_output,
                "the transcoder reads the MLP's INPUT (tc.hook_name): stash it in a first hook, then replace the "
                "MLP's output (tc.output_hook_name) by tc.decode(tc.encode(stashed input)) in a second hook."),
        Mistake("prediction written into the MLP's input", _splice_into_input,
                "the prediction replaces the MLP's OUTPUT (tc.output_hook_name); the MLP's input stays as it is."),
    ],
    hint="the transcoder reads the MLP's input (tc.hook_name) and its prediction takes the place of the MLP's output "
         "(tc.output_hook_name), so one run needs two hooks: the first keeps what it sees, the second returns the "
         "replacement. tc.encode and tc.decode work in the model's units. Position 0 keeps the MLP's own output.",
    atol=1e-4, rtol=1e-4,
)


def check_spliced_logits(fn, seed: int | None = None) -> bool:
    """Check ``spliced_logits(model, tc, tokens [batch, pos]) -> logits [batch, pos, d_vocab]``."""
    return check(SPLICE, fn, seed)


# -- Exercise 5: loss recovered --------------------------------------------------------------------
def _lr_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for _ in range(2 if seed == 0 else 1):
        clean = float(torch.rand(1, generator=g)) * 2 + 1.5
        zero = clean + float(torch.rand(1, generator=g)) * 3 + 0.5
        spliced = clean + (zero - clean) * float(torch.rand(1, generator=g)) * 0.6
        out.append(Case(f"seed {seed}", {"clean": clean, "spliced": spliced, "zero_ablated": zero}))
    return out


LOSS_RECOVERED = Exercise(
    id="w14_loss_recovered",
    title="loss_recovered",
    reference=lambda clean, spliced, zero_ablated: (zero_ablated - spliced) / (zero_ablated - clean),
    cases=_lr_cases,
    mistakes=[
        Mistake("the gap left, not the gap closed", lambda clean, spliced, zero_ablated:
                (spliced - clean) / (zero_ablated - clean),
                "that is the share of the loss gap the transcoder LEAVES; loss recovered is the share it closes, "
                "(L_zero - L_spliced) / (L_zero - L_clean), 1 for a perfect replacement."),
        Mistake("divided by the zero-ablated loss", lambda clean, spliced, zero_ablated:
                (zero_ablated - spliced) / zero_ablated,
                "normalise by the gap between zero-ablating the MLP and the clean model, L_zero - L_clean, not by "
                "L_zero itself."),
    ],
    hint="compare two gaps, both measured down from the zero-ablated loss: how far the spliced model gets below it, "
         "and how far the clean model is below it. Check your formula on the two ends: spliced = clean must give 1, "
         "spliced = zero-ablated must give 0.",
)


def check_loss_recovered(fn, seed: int | None = None) -> bool:
    """Check ``loss_recovered(clean, spliced, zero_ablated) -> float``."""
    return check(LOSS_RECOVERED, fn, seed)


# -- Exercise 6: L0 and dead latents ---------------------------------------------------------------
def _l0_cases(seed: int) -> list[Case]:
    g = _g(seed)
    n, m = (40, 16) if seed == 0 else (int(torch.randint(20, 60, (1,), generator=g)), int(torch.randint(8, 24, (1,), generator=g)))
    f = torch.relu(torch.randn(n, m, generator=g) * 2 - 1.5)
    dead = torch.randperm(m, generator=g)[: max(m // 4, 1)]
    f[:, dead] = 0
    f[0, : m // 2] = torch.rand(m // 2, generator=g) + 0.1        # some live latents fire on token 0 only
    f[0, dead] = 0
    return [Case(f"seed {seed}, {n} tokens x {m} latents", {"latents": f})]


def _l0_reference(latents):
    return float((latents > 0).float().sum(-1).mean()), int(((latents > 0).sum(0) == 0).sum())


L0_DEAD = Exercise(
    id="w14_l0_and_dead",
    title="l0_and_dead",
    reference=_l0_reference,
    cases=_l0_cases,
    mistakes=[
        Mistake("L1, not L0", lambda latents: (float(latents.sum(-1).mean()), int(((latents > 0).sum(0) == 0).sum())),
                "L0 COUNTS the active latents per token ((latents > 0).sum(-1)), it does not add up their values."),
        Mistake("dead = silent on some token", lambda latents: (float((latents > 0).float().sum(-1).mean()),
                                                                int((latents == 0).any(0).sum())),
                "a latent is dead when it fires on NO token at all (its column is zero everywhere), not when it is "
                "zero somewhere."),
    ],
    hint="one activity mask answers both: count the active latents of each token and average over tokens; a latent "
         "is dead when its column of the mask is empty. Return a Python float and a Python int.",
)


def check_l0_and_dead(fn, seed: int | None = None) -> bool:
    """Check ``l0_and_dead(latents [n_tokens, d_sae]) -> (l0: float, n_dead: int)``."""
    return check(L0_DEAD, fn, seed)


EXERCISES = {ex.id: ex for ex in (TRANSCODER_FORWARD, TRANSCODER_LOSS, SPLICE, LOSS_RECOVERED, L0_DEAD)}


# -- Exercise 7: de-embedding ----------------------------------------------------------------------
def _deemb_cases(seed: int) -> list[Case]:
    g = _g(seed)
    v, d, m = (20, 8, 6) if seed == 0 else (int(torch.randint(10, 30, (1,), generator=g)), 8, int(torch.randint(4, 10, (1,), generator=g)))
    return [Case(f"seed {seed}, vocab {v}, d_sae {m}", {
        "W_E": torch.randn(v, d, generator=g) + torch.randn(v, 1, generator=g),   # rows with a mean offset
        "W_enc": torch.randn(d, m, generator=g), "ln_weight": torch.rand(d, generator=g) + 0.5})]


def _deemb_reference(W_E, W_enc, ln_weight):
    return ((W_E - W_E.mean(-1, keepdim=True)) * ln_weight) @ W_enc


DE_EMBEDDING = Exercise(
    id="w14_de_embedding",
    title="de_embedding",
    reference=_deemb_reference,
    cases=_deemb_cases,
    mistakes=[
        Mistake("not centred", lambda W_E, W_enc, ln_weight: (W_E * ln_weight) @ W_enc,
                "LayerNorm removes each vector's mean over d_model first: subtract W_E.mean(-1, keepdim=True) from "
                "every embedding before the rest."),
        Mistake("LayerNorm weight left out", lambda W_E, W_enc, ln_weight: (W_E - W_E.mean(-1, keepdim=True)) @ W_enc,
                "ln2 multiplies every dimension by its weight before the MLP (and the transcoder) reads it: fold "
                "ln_weight in (elementwise) before the encoder."),
    ],
    hint="follow each embedding row through ln2 to the encoder: LayerNorm removes the row's mean over d_model, "
         "divides by a scale (frozen at 1 here) and multiplies by its weight; then the encoder projects it. The "
         "result is [d_vocab, d_sae].",
)


def check_de_embedding(fn, seed: int | None = None) -> bool:
    """Check ``de_embedding(W_E [d_vocab, d], W_enc [d, d_sae], ln_weight [d]) -> [d_vocab, d_sae]``."""
    return check(DE_EMBEDDING, fn, seed)


# -- Exercise 8: input-invariant connections -------------------------------------------------------
def _conn_cases(seed: int) -> list[Case]:
    g = _g(seed)
    d = 8
    me, ml = (10, 6) if seed == 0 else (int(torch.randint(5, 14, (1,), generator=g)), int(torch.randint(3, 9, (1,), generator=g)))
    return [Case(f"seed {seed}, {me} -> {ml} latents", {
        "W_dec_early": (torch.randn(me, d, generator=g) + torch.randn(me, 1, generator=g)) * (torch.rand(me, 1, generator=g) + 0.3),
        "W_enc_late": torch.randn(d, ml, generator=g), "ln_weight": torch.rand(d, generator=g) + 0.5})]


def _conn_reference(W_dec_early, W_enc_late, ln_weight):
    dec = W_dec_early - W_dec_early.mean(-1, keepdim=True)
    return (dec * ln_weight) @ W_enc_late


def _conn_unit(W_dec_early, W_enc_late, ln_weight):
    dec = W_dec_early / W_dec_early.norm(dim=-1, keepdim=True)
    return ((dec - dec.mean(-1, keepdim=True)) * ln_weight) @ W_enc_late


CONNECTIONS = Exercise(
    id="w14_connections",
    title="connections",
    reference=_conn_reference,
    cases=_conn_cases,
    mistakes=[
        Mistake("not centred", lambda W_dec_early, W_enc_late, ln_weight: (W_dec_early * ln_weight) @ W_enc_late,
                "the later ln2 removes the mean over d_model of whatever is written to the residual stream: centre "
                "each decoder row (subtract its mean) before folding in ln_weight."),
        Mistake("unit-norm decoder rows", _conn_unit,
                "keep the decoder rows as they are: one unit of latent i writes W_dec[i] (its norm included), so its "
                "effect per unit of activation scales with ||W_dec[i]||."),
    ],
    hint="the same path as the de-embedding, with each earlier decoder row (as given, not normalised) in place of a "
         "token's embedding: through the later ln2, then into the later encoder. The result is "
         "[d_sae_early, d_sae_late].",
)


def check_connections(fn, seed: int | None = None) -> bool:
    """Check ``connections(W_dec_early [d_e, d], W_enc_late [d, d_l], ln_weight [d]) -> [d_e, d_l]``."""
    return check(CONNECTIONS, fn, seed)


# -- Exercise 9: attributions on a prompt ----------------------------------------------------------
def _att_cases(seed: int) -> list[Case]:
    g = _g(seed)
    me, ml, pos = 10, 6, 5
    latents = [2, 5] if seed == 0 else [int(torch.randint(0, ml, (1,), generator=g))]
    early = torch.relu(torch.randn(pos, me, generator=g))
    conn = torch.randn(me, ml, generator=g)
    scale = torch.rand(pos, generator=g) * 3 + 0.5
    return [Case(f"seed {seed}, latent {j}", {"early_latents": early, "conn": conn, "latent": j, "ln_scale": scale})
            for j in latents]


def _att_reference(early_latents, conn, latent, ln_scale):
    return T.attributions(early_latents, conn, latent, ln_scale)


ATTRIBUTIONS = Exercise(
    id="w14_attributions",
    title="attributions",
    reference=_att_reference,
    cases=_att_cases,
    mistakes=[
        Mistake("multiplied by the scale", lambda early_latents, conn, latent, ln_scale:
                early_latents * conn[:, latent] * ln_scale[:, None],
                "LayerNorm DIVIDES by its scale: the contribution is f_i * conn[i, latent] / ln_scale at each position."),
        Mistake("the weights only", lambda early_latents, conn, latent, ln_scale:
                (conn[:, latent] / ln_scale[:, None]).expand_as(early_latents).clone(),
                "the attribution is input-dependent: multiply the connection by how active each earlier latent is on "
                "this prompt, f_i(x)."),
    ],
    hint="only the later latent's column of conn matters; each earlier latent's activation at a position scales "
         "its entry, and LayerNorm divides by its scale, one number per position. Check the shapes broadcast to "
         "[pos, d_e].",
)


def check_attributions(fn, seed: int | None = None) -> bool:
    """Check ``attributions(early_latents [pos, d_e], conn [d_e, d_l], latent, ln_scale [pos]) -> [pos, d_e]``."""
    return check(ATTRIBUTIONS, fn, seed)


EXERCISES.update({ex.id: ex for ex in (DE_EMBEDDING, CONNECTIONS, ATTRIBUTIONS)})


# -- Exercise 3: train a transcoder (checked by what it achieves) ----------------------------------
#: What a trained transcoder must reach on the planted-MLP case for each entry of the outcome vector.
TRAINING_BARS = {"explained_variance": 0.6, "l0_frac": 1 / 3, "mmcs_out": 0.8}
_PLANT = dict(d=8, n_features=12, expected_active=2)


class PlantedMLP:
    """A planted 'MLP': inputs ``x = c @ D_in`` and outputs ``y = c @ D_out`` with the same sparse
    coefficients ``c`` and different unit directions (feature i read along ``D_in[i]``, written along
    ``D_out[i]``). A transcoder should learn decoder rows along ``D_out``."""

    def __init__(self, seed: int):
        from mi_course.data.planted_features import PlantedFeatures

        self._pf = PlantedFeatures(**_PLANT, seed=100 + seed)
        out = torch.randn(_PLANT["n_features"], _PLANT["d"], generator=_g(500 + seed))
        self.d_in_dirs, self.d_out_dirs = self._pf.directions, out / out.norm(dim=-1, keepdim=True)

    def sample(self, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, c = self._pf.sample(n, g)
        return x, c @ self.d_out_dirs


def _reference_train(sample, d_in, d_sae, d_out, steps, l1_coeff=0.3, lr=3e-3, seed=0):
    torch.manual_seed(seed)
    W_dec = torch.randn(d_sae, d_out)
    W_dec = (W_dec / W_dec.norm(dim=-1, keepdim=True) * 0.1).requires_grad_()
    W_enc = (torch.randn(d_in, d_sae) * 0.1 / d_in ** 0.5).requires_grad_()
    b_enc = torch.zeros(d_sae, requires_grad=True)
    b_dec = torch.zeros(d_out, requires_grad=True)
    opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)
    for _ in range(steps):
        x, y = sample(256)
        f = torch.relu(x @ W_enc + b_enc)
        y_hat = f @ W_dec + b_dec
        loss = (y - y_hat).pow(2).sum(-1).mean() + l1_coeff * (f * W_dec.norm(dim=-1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"W_enc": W_enc.detach(), "b_enc": b_enc.detach(), "W_dec": W_dec.detach(), "b_dec": b_dec.detach()}


def _sae_train(sample, d_in, d_sae, d_out, steps, l1_coeff=0.3, lr=3e-3, seed=0):
    """The SAE habit: reconstruct the input x instead of predicting the output y."""
    return _reference_train(lambda n: (sample(n)[0],) * 2, d_in, d_sae, d_out, steps, l1_coeff, lr, seed)


def _no_l1_train(sample, d_in, d_sae, d_out, steps, l1_coeff=0.3, lr=3e-3, seed=0):
    return _reference_train(sample, d_in, d_sae, d_out, steps, 0.0, lr, seed)


def training_outcome(train_fn, data_seed: int, steps: int = 300) -> torch.Tensor:
    """Run ``train_fn`` on a planted MLP (8 dims in and out, 12 features, 24 latents); return the outcome
    vector [explained variance of y >= bar, L0 <= bar * d_sae, MMCS(decoder, output directions) >= bar] as 0/1."""
    plant = PlantedMLP(data_seed)
    g = _g(data_seed)
    params = train_fn(lambda n: plant.sample(n, g), _PLANT["d"], 24, _PLANT["d"], steps, seed=data_seed)
    if not isinstance(params, dict) or not {"W_enc", "b_enc", "W_dec", "b_dec"} <= set(params):
        raise TypeError("return a dict with the trained W_enc, b_enc, W_dec and b_dec")
    p = {k: torch.as_tensor(v).detach().float() for k, v in params.items()}
    x, y = plant.sample(2000, _g(999))
    f = torch.relu(x @ p["W_enc"] + p["b_enc"])
    y_hat = f @ p["W_dec"] + p["b_dec"]
    ok = [sae_metrics.explained_variance(y, y_hat) >= TRAINING_BARS["explained_variance"],
          sae_metrics.l0(f) <= TRAINING_BARS["l0_frac"] * 24,
          sae_metrics.mmcs(p["W_dec"], plant.d_out_dirs) >= TRAINING_BARS["mmcs_out"]]
    return torch.tensor([float(v) for v in ok])


def _outcome(train_fn):
    def run(data_seed: int, steps: int) -> torch.Tensor:
        return training_outcome(train_fn, data_seed, steps)
    return run


def _train_cases(seed: int) -> list[Case]:
    return [Case(f"planted MLP, seed {seed}", {"data_seed": seed, "steps": 300})]


TRAIN_TRANSCODER = Exercise(
    id="w14_train_transcoder",
    title="train_transcoder",
    reference=_outcome(_reference_train),
    cases=_train_cases,
    mistakes=[
        Mistake("trained as an SAE on x", _outcome(_sae_train),
                "your model reconstructs the MLP's input: the loss must compare f @ W_dec + b_dec with y = sample(n)[1] "
                "(the MLP's output), not with x."),
        Mistake("no sparsity penalty", _outcome(_no_l1_train),
                "the latents are not sparse (L0 too high): add l1_coeff * mean over tokens of sum_i f_i ||W_dec[i]||."),
    ],
    hint=f"the checker trains with your function on a planted MLP and expects explained variance of y >= "
         f"{TRAINING_BARS['explained_variance']}, L0 <= a third of the latents and decoder rows along the planted "
         f"output directions (MMCS >= {TRAINING_BARS['mmcs_out']}). Train a ReLU transcoder (Exercise 1's forward "
         "pass without TopK) with your loss and Adam, zeroing the gradients every step.",
    atol=0.0, rtol=0.0, visible_random_seed=False,
)


def check_train_transcoder(fn, seed: int | None = None) -> bool:
    """Check ``train_transcoder(sample, d_in, d_sae, d_out, steps, l1_coeff=0.3, lr=3e-3, seed=0) -> dict of
    parameters`` by what it achieves on a planted MLP (``sample(n) -> (x [n, d_in], y [n, d_out])``)."""
    from mi_course.checking import core

    if not callable(fn):
        return check(TRAIN_TRANSCODER, fn, seed)
    passed = check(TRAIN_TRANSCODER, _outcome(fn), seed)
    if seed is None:
        core._LAST_VISIBLE[TRAIN_TRANSCODER.id] = (fn, passed)
    return passed


def train_transcoder_or_reference(fn):
    """Your ``train_transcoder`` if its last visible check passed, else the course's reference loop."""
    from mi_course.checking import core

    last = core._LAST_VISIBLE.get(TRAIN_TRANSCODER.id)
    if last is not None and last[0] is fn and last[1]:
        return fn
    print("using the course's reference for train_transcoder until yours passes its check")
    return _reference_train


# -- Exercise 10: the check by ablation ------------------------------------------------------------
def _abl_cases(seed: int) -> list[Case]:
    g = _g(seed)
    out = []
    for _ in range(2 if seed == 0 else 1):
        early = _random_transcoder(0, 20, g, output_scale=float(torch.rand(1, generator=g)) + 1.5)
        late = _random_transcoder(1, 16, g, input_scale=float(torch.rand(1, generator=g)) + 0.5)
        out.append(Case(f"seed {seed}", {
            "model": tiny_model(), "early": early, "late": late, "tokens": _tokens(g),
            "early_latent": int(torch.randint(0, 20, (1,), generator=g)),
            "late_latent": int(torch.randint(0, 16, (1,), generator=g))}))
    return out


def _abl_reference(model, early, late, tokens, early_latent, late_latent):
    return T.ablation_effect(model, early, late, tokens, early_latent, late_latent)


def _abl_variant(unscaled=False, post=False, flip=False):
    @torch.no_grad()
    def fn(model, early, late, tokens, early_latent, late_latent):
        stash = {}

        def read(act, hook=None):
            stash["f"] = early.encode(act)[..., early_latent]
            return act

        def remove(act, hook=None):
            w = early.W_dec[early_latent] if unscaled else early.W_dec[early_latent] / early.output_scale
            out = act - stash["f"][..., None] * w
            return torch.cat([act[:, :1], out[:, 1:]], 1)

        def rec(key):
            def hook(act, hook=None):
                pre = late.pre_activations(act * late.input_scale)
                stash[key] = (late.activation(pre) if post else pre)[..., late_latent]
                return act
            return hook

        model.run_with_hooks(tokens, fwd_hooks=[(late.hook_name, rec("clean"))])
        model.run_with_hooks(tokens, fwd_hooks=[(early.hook_name, read), (early.output_hook_name, remove),
                                                (late.hook_name, rec("ablated"))])
        d = stash["clean"] - stash["ablated"]
        return -d if flip else d
    return fn


ABLATION = Exercise(
    id="w14_ablation_effect",
    title="ablation_effect",
    reference=_abl_reference,
    cases=_abl_cases,
    mistakes=[
        Mistake("output_scale forgotten", _abl_variant(unscaled=True),
                "the transcoder works in scaled units: latent i writes f_i * W_dec[i] / tc.output_scale into the "
                "model's units (that is what tc.decode does)."),
        Mistake("late latent after its activation", _abl_variant(post=True),
                "compare the later latent's PRE-activation, late.pre_activations(x * late.input_scale)[..., j]: "
                "after ReLU a latent pushed below zero shows no change at all, and attributions add up pre-activations."),
        Mistake("ablated minus clean", _abl_variant(flip=True),
                "return clean MINUS ablated, so a latent that pushed the later one up gives a positive effect (the "
                "same sign as its attribution)."),
    ],
    hint="two runs of the model, one clean and one with the earlier latent's write (its activation times its decoder "
         "row, in the model's units as tc.decode gives them) taken out of the earlier MLP's output at positions 1:. "
         "In both, read the later latent's pre-activation where the later transcoder reads its input "
         "(pre_activations expects the scaled input, as encode passes it). Return clean minus ablated.",
    atol=1e-4, rtol=1e-3,
)


def check_ablation_effect(fn, seed: int | None = None) -> bool:
    """Check ``ablation_effect(model, early, late, tokens, early_latent, late_latent) -> [batch, pos]``
    (clean minus ablated pre-activation of the later latent)."""
    return check(ABLATION, fn, seed)


EXERCISES.update({ex.id: ex for ex in (TRAIN_TRANSCODER, ABLATION)})

"""Checkers for week 00: a tour of the toolkit (losses from logits, patching with hooks)."""

from __future__ import annotations

from functools import lru_cache

import torch

from mi_course.checking.core import Case, Exercise, Mistake, check, yours_or_reference  # noqa: F401  (notebooks: checks.yours_or_reference)
from mi_course.data.induction import repeated_random_tokens
from mi_course.methods import toolkit


# -- 1. next-token loss ------------------------------------------------------------------------
def _loss_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b, p, v in [(1, 4, 5), (3, 9, 30)]:
        out.append(Case(f"seed {seed}, batch={b} pos={p} d_vocab={v}", {
            "logits": torch.randn(b, p, v, generator=g) * 2, "tokens": torch.randint(0, v, (b, p), generator=g)}))
    return out


def _same_position(logits, tokens):
    logp = logits[:, 1:].log_softmax(-1)
    return -logp.gather(-1, tokens[:, 1:, None])[..., 0]


def _no_log_softmax(logits, tokens):
    return -logits[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]


def _mean(logits, tokens):
    return toolkit.next_token_loss(logits, tokens).mean()


NEXT_TOKEN_LOSS = Exercise(
    id="w00_next_token_loss",
    title="next_token_loss",
    reference=toolkit.next_token_loss,
    cases=_loss_cases,
    mistakes=[
        Mistake("same position", _same_position,
                "the logits at position i predict token i+1: pair logits[:, :-1] with tokens[:, 1:]."),
        Mistake("raw logits", _no_log_softmax,
                "turn logits into log-probabilities first (log_softmax over the vocabulary)."),
        Mistake("averaged", _mean,
                "return the loss at every position, shape [batch, pos-1]; do not average."),
    ],
    hint="the logits at position i are a guess for token i+1, so the last position has no target; the loss is the "
         "negative log-probability (over the vocabulary) of the token that actually comes next (look up torch.gather).",
    atol=1e-4,
)


def check_next_token_loss(fn, seed: int | None = None) -> bool:
    """Check ``next_token_loss(logits, tokens) -> [batch, pos-1]``."""
    return check(NEXT_TOKEN_LOSS, fn, seed)


# -- 2. activation patching with a hook --------------------------------------------------------
@lru_cache(maxsize=1)
def _load():
    from mi_course import zoo

    return zoo.load("attn-only-2l")


def _model():
    """The checkers' own ``attn-only-2l``, with any hook a wrong answer left attached removed."""
    model = _load()
    model.reset_hooks()
    return model


def _patch_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    # layer 0 reads embeddings: patch inside the corrupted first copy (positions 1..10) there
    for layer, pos in [(1, 14), (0, int(torch.randint(1, 11, (1,), generator=g)))]:
        clean = repeated_random_tokens(2, 10, model.cfg.d_vocab, seed=seed)
        corrupt = clean.clone()
        corrupt[:, 1:11] = torch.randint(1, model.cfg.d_vocab, (2, 10), generator=g)  # a different first copy
        out.append(Case(f"seed {seed}, layer {layer}, pos {pos}",
                        {"model": model, "clean_tokens": clean, "corrupt_tokens": corrupt, "layer": layer, "pos": pos}))
    return out


def _patch_all(model, clean_tokens, corrupt_tokens, layer, pos):
    name = f"blocks.{layer}.hook_resid_pre"
    _, cache = model.run_with_cache(clean_tokens, names_filter=lambda n: n == name)
    with torch.no_grad():
        return model.run_with_hooks(corrupt_tokens, fwd_hooks=[(name, lambda r, hook: cache[name])])


def _wrong_direction(model, clean_tokens, corrupt_tokens, layer, pos):
    return toolkit.patch_resid_pre(model, corrupt_tokens, clean_tokens, layer, pos)


def _no_patch(model, clean_tokens, corrupt_tokens, layer, pos):
    with torch.no_grad():
        return model(corrupt_tokens)


PATCH = Exercise(
    id="w00_patch_resid_pre",
    title="patch_resid_pre",
    reference=toolkit.patch_resid_pre,
    cases=_patch_cases,
    mistakes=[
        Mistake("every position", _patch_all,
                "you patched the residual stream at every position; replace only position `pos`."),
        Mistake("wrong direction", _wrong_direction,
                "you ran the clean input and patched in the corrupted activation; run the *corrupted* input and "
                "patch in the *clean* activation."),
        Mistake("no patch", _no_patch,
                "these are the corrupted run's logits unchanged: did your hook return the edited tensor, and "
                "is the hook name 'blocks.{layer}.hook_resid_pre'?"),
    ],
    hint="two runs: one to read the clean activation at blocks.{layer}.hook_resid_pre (a cache), one to write it into "
         "the corrupted run at position pos only (a hook that returns the edited tensor).",
    atol=1e-4,
)


def check_patch_resid_pre(fn, seed: int | None = None) -> bool:
    """Check ``patch_resid_pre(model, clean_tokens, corrupt_tokens, layer, pos) -> logits``."""
    return check(PATCH, fn, seed)


# -- 3. one head's pattern from a filtered cache -----------------------------------------------
def _tokens(seed: int, n_batch: int, seq_len: int) -> torch.Tensor:
    return repeated_random_tokens(n_batch, seq_len, _load().cfg.d_vocab, seed=seed)


def _head_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    for layer in (1, 0):
        head = int(torch.randint(0, 2, (1,), generator=g)) if layer == 1 else int(torch.randint(1, 2, (1,), generator=g))
        seq_len = int(torch.randint(4, 9, (1,), generator=g))
        out.append(Case(f"seed {seed}, head {layer}.{head}, seq_len={seq_len}",
                        {"model": model, "tokens": _tokens(seed + layer, 2, seq_len), "layer": layer, "head": head}))
    return out


def _pattern_swapped(model, tokens, layer, head):
    return toolkit.head_pattern(model, tokens, head, layer)


def _pattern_head_mean(model, tokens, layer, head):
    name = f"blocks.{layer}.attn.hook_pattern"
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
    return cache[name].mean(1)


def _pattern_transposed(model, tokens, layer, head):
    return toolkit.head_pattern(model, tokens, layer, head).transpose(-1, -2)


HEAD_PATTERN = Exercise(
    id="w00_head_pattern",
    title="head_pattern",
    reference=toolkit.head_pattern,
    cases=_head_cases,
    mistakes=[
        Mistake("layer and head swapped", _pattern_swapped,
                "you took the pattern of head {head}.{layer}: the hook name carries the layer, the index carries the head."),
        Mistake("averaged over heads", _pattern_head_mean,
                "you averaged the layer's heads; hook_pattern is [batch, head, query, key]: take the one head."),
        Mistake("transposed", _pattern_transposed,
                "your pattern is transposed: rows are queries, columns keys (each row sums to 1)."),
    ],
    hint="cache only layer `layer`'s attention pattern (look up run_with_cache's names_filter); the cached tensor is "
         "[batch, head, query, key]. Self-check: every row of your answer sums to 1.",
    atol=1e-5,
)


def check_head_pattern(fn, seed: int | None = None) -> bool:
    """Check ``head_pattern(model, tokens, layer, head) -> [batch, query_pos, key_pos]``."""
    return check(HEAD_PATTERN, fn, seed)


# -- 4. scale one head -------------------------------------------------------------------------
def _scale_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    for layer, factor in [(1, round(float(torch.rand(1, generator=g)) * 0.8 + 0.1, 3)), (0, 2.0 + seed % 3)]:
        head = int(torch.randint(0, 4, (1,), generator=g))
        out.append(Case(f"seed {seed}, head {layer}.{head}, factor {factor}",
                        {"model": model, "tokens": _tokens(seed * 3 + layer, 2, 8), "layer": layer, "head": head, "factor": factor}))
    return out


def _scale_zero(model, tokens, layer, head, factor):
    return toolkit.scale_head(model, tokens, layer, head, 0.0)


def _scale_position(model, tokens, layer, head, factor):
    def hook(z, hook):
        z = z.clone()
        z[:, head] = z[:, head] * factor
        return z
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)])


def _scale_layer(model, tokens, layer, head, factor):
    def hook(z, hook):
        return z * factor
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)])


SCALE_HEAD = Exercise(
    id="w00_scale_head",
    title="scale_head",
    reference=toolkit.scale_head,
    cases=_scale_cases,
    mistakes=[
        Mistake("ignores factor", _scale_zero,
                "you zeroed the head whatever `factor` is: multiply its z by `factor`."),
        Mistake("indexed a position", _scale_position,
                "you scaled a *position*: hook_z is [batch, pos, head, d_head], so the head is the third index."),
        Mistake("whole layer", _scale_layer,
                "you scaled every head of the layer; scale only `head`."),
    ],
    hint="hook_z of layer `layer` holds one vector per head, [batch, pos, head, d_head]: change only that head's slice, "
         "on a copy, and return the edited tensor so the run uses it. Self-check: factor 1 must give the clean logits.",
    atol=1e-4,
)


def check_scale_head(fn, seed: int | None = None) -> bool:
    """Check ``scale_head(model, tokens, layer, head, factor) -> logits``."""
    return check(SCALE_HEAD, fn, seed)


# -- 5. a hook on an attention pattern ---------------------------------------------------------
def _pattern_hook_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    return [Case(f"seed {seed}, head {layer}.{head}", {"model": model, "tokens": _tokens(seed * 5 + layer, 2, 7),
                                                        "layer": layer, "head": head})
            for layer, head in [(1, int(torch.randint(0, 4, (1,), generator=g))), (0, 3)]]


def _bos_all_heads(model, tokens, layer, head):
    def hook(p, hook):
        p = torch.zeros_like(p)
        p[..., 0] = 1.0
        return p
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", hook)])


def _pattern_zeroed(model, tokens, layer, head):
    def hook(p, hook):
        p = p.clone()
        p[:, head] = 0.0
        return p
    with torch.no_grad():
        return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_pattern", hook)])


def _pattern_unchanged(model, tokens, layer, head):
    with torch.no_grad():
        return model(tokens)


PATTERN_TO_BOS = Exercise(
    id="w00_pattern_to_bos",
    title="pattern_to_bos",
    reference=toolkit.pattern_to_bos,
    cases=_pattern_hook_cases,
    mistakes=[
        Mistake("every head", _bos_all_heads,
                "you changed every head of the layer; hook_pattern is [batch, head, query, key]: change only `head`."),
        Mistake("zeroed pattern", _pattern_zeroed,
                "a pattern of zeros attends nowhere (it zero-ablates the head). Put all of each query's "
                "attention on key 0: zeros everywhere, then 1 in column 0."),
        Mistake("no effect", _pattern_unchanged,
                "the logits are unchanged. Hook 'blocks.{layer}.attn.hook_pattern' and return the edited copy "
                "(edits to hook_attn_scores are ignored on these models)."),
    ],
    hint="in a hook on that layer's hook_pattern, make every row of that head's pattern 'all attention on key 0' "
         "(each row still sums to 1); leave the other heads alone.",
    atol=1e-4,
)


def check_pattern_to_bos(fn, seed: int | None = None) -> bool:
    """Check ``pattern_to_bos(model, tokens, layer, head) -> logits``."""
    return check(PATTERN_TO_BOS, fn, seed)


# -- 6. hooks with state -----------------------------------------------------------------------
def _state_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    out = []
    for n_batch in (1, 3):
        seq_len = int(torch.randint(3, 10, (1,), generator=g))
        out.append(Case(f"seed {seed}, batch={n_batch} seq_len={seq_len}",
                        {"model": model, "tokens": _tokens(seed * 11 + n_batch, n_batch, seq_len)}))
    return out


def _state_last_layer_only(model, tokens):
    ref = toolkit.attention_to_bos(model, tokens)
    return ref[-1:].expand_as(ref).clone()


def _state_from_bos(model, tokens):
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    return torch.stack([cache["pattern", l][:, :, 0, :].mean(dim=(0, 2)) for l in range(model.cfg.n_layers)])


def _state_skip_first_query(model, tokens):
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    return torch.stack([cache["pattern", l][:, :, 1:, 0].mean(dim=(0, 2)) for l in range(model.cfg.n_layers)])


ATTENTION_TO_BOS = Exercise(
    id="w00_attention_to_bos",
    title="attention_to_bos",
    reference=toolkit.attention_to_bos,
    cases=_state_cases,
    mistakes=[
        Mistake("one slot for all layers", _state_last_layer_only,
                "every row is the last layer's: each hook overwrote the same variable. Give each layer its own "
                "entry (a dict keyed by layer, filled by a hook made for that layer)."),
        Mistake("attention *from* position 0", _state_from_bos,
                "you averaged what position 0 attends to (a row); the question is how much every query attends "
                "*to* key 0 (a column: pattern[..., 0])."),
        Mistake("left out query 0", _state_skip_first_query,
                "average over every query, including position 0 itself."),
    ],
    hint="one recording hook per layer on hook_pattern, all active in a single run; each stores its layer's answer "
         "somewhere that outlives the call and returns None. A hook defined directly in a for loop sees only the last "
         "layer: build each one in a helper function.",
    atol=1e-5,
)


def check_attention_to_bos(fn, seed: int | None = None) -> bool:
    """Check ``attention_to_bos(model, tokens) -> [n_layers, n_heads]``."""
    return check(ATTENTION_TO_BOS, fn, seed)


# -- 7. attach a hook, then remove it ----------------------------------------------------------
def _zero_layer1_head(head: int):
    def hook(z, hook):
        z = z.clone()
        z[:, :, head] = 0.0
        return z
    return hook


def _remove_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    head = int(torch.randint(0, 4, (1,), generator=g))
    return [Case(f"seed {seed}, zero head 1.{head}", {"model": model, "tokens": _tokens(seed, 2, 6),
                                                      "hook_name": "blocks.1.attn.hook_z", "hook_fn": _zero_layer1_head(head)}),
            Case(f"seed {seed}, zero head 0.3", {"model": model, "tokens": _tokens(seed + 1, 2, 8),
                                                 "hook_name": "blocks.0.attn.hook_z", "hook_fn": _zero_layer1_head(3)})]


def _hooked_then_clean_reference(model, tokens, hook_name, hook_fn):
    model.reset_hooks()  # a wrong answer may have left its hook attached
    return toolkit.hooked_then_clean(model, tokens, hook_name, hook_fn)


def _never_removed(model, tokens, hook_name, hook_fn):
    with torch.no_grad():
        hooked = model.run_with_hooks(tokens, fwd_hooks=[(hook_name, hook_fn)])
    return hooked, hooked.clone()


def _removed_too_early(model, tokens, hook_name, hook_fn):
    with torch.no_grad():
        clean = model(tokens)
    return clean, clean.clone()


def _swapped(model, tokens, hook_name, hook_fn):
    hooked, clean = toolkit.hooked_then_clean(model, tokens, hook_name, hook_fn)
    return clean, hooked


REMOVE_HOOKS = Exercise(
    id="w00_hooked_then_clean",
    title="hooked_then_clean",
    reference=_hooked_then_clean_reference,
    cases=_remove_cases,
    mistakes=[
        Mistake("never removed", _never_removed,
                "your second run is still hooked: a hook added with model.add_hook stays until you remove it. "
                "Call model.reset_hooks() between the two runs."),
        Mistake("removed before the first run", _removed_too_early,
                "neither run was hooked: run the model once *after* model.add_hook(hook_name, hook_fn), "
                "before removing it."),
        Mistake("order swapped", _swapped,
                "return (hooked_logits, clean_logits), in that order."),
    ],
    hint="two plain runs of the model: the first with hook_fn attached (model.add_hook), the second after removing it "
         "(look up model.reset_hooks). Self-check: the second result equals a run that never had the hook.",
    atol=1e-4,
)


def check_hooked_then_clean(fn, seed: int | None = None) -> bool:
    """Check ``hooked_then_clean(model, tokens, hook_name, hook_fn) -> (hooked_logits, clean_logits)``."""
    return check(REMOVE_HOOKS, fn, seed)


# -- 8. a generation loop with a hook ----------------------------------------------------------
def _gen_cases(seed: int) -> list[Case]:
    model = _model()
    g = torch.Generator().manual_seed(seed)
    seq_len = int(torch.randint(5, 9, (1,), generator=g))
    n_new = int(torch.randint(3, 7, (1,), generator=g))
    prompt = _tokens(seed * 13, 2, seq_len)[:, : seq_len + 3]  # <bos>, a first copy, the start of a second
    return [Case(f"seed {seed}, {n_new} new tokens, previous-token head 0.3 zeroed",
                 {"model": model, "tokens": prompt, "n_new": n_new,
                  "fwd_hooks": [("blocks.0.attn.hook_z", _zero_layer1_head(3))]}),
            Case(f"seed {seed}, {n_new + 1} new tokens, no hooks",
                 {"model": model, "tokens": prompt, "n_new": n_new + 1, "fwd_hooks": []})]


def _gen_hook_first_step_only(model, tokens, n_new, fwd_hooks):
    out = toolkit.generate_with_hooks(model, tokens, 1, fwd_hooks) if n_new else tokens
    return toolkit.generate_with_hooks(model, out, n_new - 1, []) if n_new > 1 else out


def _gen_first_position(model, tokens, n_new, fwd_hooks):
    out = tokens
    with torch.no_grad():
        for _ in range(n_new):
            logits = model.run_with_hooks(out, fwd_hooks=list(fwd_hooks))
            out = torch.cat([out, logits[:, 0].argmax(-1, keepdim=True)], dim=1)
    return out


def _gen_only_new(model, tokens, n_new, fwd_hooks):
    return toolkit.generate_with_hooks(model, tokens, n_new, fwd_hooks)[:, tokens.shape[1]:]


GENERATE = Exercise(
    id="w00_generate_with_hooks",
    title="generate_with_hooks",
    reference=toolkit.generate_with_hooks,
    cases=_gen_cases,
    mistakes=[
        Mistake("hooks on the first step only", _gen_hook_first_step_only,
                "only your first new token was generated with the hooks: pass fwd_hooks to *every* forward pass of the loop."),
        Mistake("first position", _gen_first_position,
                "you took the prediction at position 0; the next token is predicted by the *last* position (logits[:, -1])."),
        Mistake("only the new tokens", _gen_only_new,
                "return the prompt followed by the new tokens, [batch, pos + n_new]."),
    ],
    hint="one forward pass per new token, with fwd_hooks active every time, on everything generated so far; the next "
         "token is the greedy choice at the last position. Return the prompt followed by the new tokens.",
    atol=0,
    rtol=0,
)


def check_generate_with_hooks(fn, seed: int | None = None) -> bool:
    """Check ``generate_with_hooks(model, tokens, n_new, fwd_hooks) -> [batch, pos + n_new]``."""
    return check(GENERATE, fn, seed)


EXERCISES = {ex.id: ex for ex in [NEXT_TOKEN_LOSS, PATCH, HEAD_PATTERN, SCALE_HEAD, PATTERN_TO_BOS,
                                  ATTENTION_TO_BOS, REMOVE_HOOKS, GENERATE]}

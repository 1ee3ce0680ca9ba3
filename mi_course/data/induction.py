"""Synthetic sequences for induction heads (week 02, zoo model ``attn-only-2l``).

Vocabulary: token 0 is ``<bos>``; tokens 1..d_vocab-1 are meaningless syllables ("ba",
"ben", ...), so a pattern in a picture is easy to read and carries no prior meaning.

Training sequences contain copies of earlier spans with *random* lengths, sources and gaps.
With a fixed repeat period a 2-layer model can solve the task with positional heads and no
induction circuit forms; random offsets force the real mechanism.
"""

from __future__ import annotations

import torch

from mi_course.errors import InputError

BOS = 0
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def token_names(d_vocab: int) -> list[str]:
    """Display names: ``['<bos>', 'ba', 'ban', 'be', ...]`` (``d_vocab`` of them)."""
    names = ["<bos>"]
    for c in _CONSONANTS:
        for v in _VOWELS:
            for end in ("", "n"):
                names.append(c + v + end)
    if d_vocab > len(names):
        names += [f"t{i}" for i in range(len(names), d_vocab)]
    return names[:d_vocab]


def training_batch(
    batch_size: int, seq_len: int, d_vocab: int, generator: torch.Generator,
    min_span: int = 3, max_span: int = 16, max_gap: int = 5,
) -> torch.Tensor:
    """Sequences of random tokens in which earlier spans are copied again, ``[batch, seq_len]``.

    After a random-length prefix (8-16 tokens), each copy takes ``min_span..max_span`` tokens
    from a random earlier position, followed by a random gap of fresh tokens (0..max_gap).
    """
    x = torch.randint(1, d_vocab, (batch_size, seq_len), generator=generator)
    x[:, 0] = BOS

    def rint(lo: int, hi: int) -> int:  # inclusive
        return int(torch.randint(lo, hi + 1, (1,), generator=generator))

    for b in range(batch_size):
        p = rint(8, 16)
        while p < seq_len - 3:
            length = min(rint(min_span, max_span), seq_len - p)
            src = rint(1, p - 3)
            length = min(length, p - src)
            x[b, p : p + length] = x[b, src : src + length].clone()
            p += length + rint(0, max_gap)
    return x


def repeated_random_tokens(
    n_batch: int, seq_len: int, d_vocab: int, seed: int = 0, bos: bool = True
) -> torch.Tensor:
    """``[n_batch, 1 + 2*seq_len]``: ``<bos>``, then ``seq_len`` random tokens, then the same again.

    The standard probe for induction heads (Olsson et al. 2022): on the second copy, a model
    with induction heads predicts each next token by looking back at the first copy.
    """
    if seq_len < 2 or n_batch < 1:
        raise InputError(f"need n_batch >= 1 and seq_len >= 2, got n_batch={n_batch}, seq_len={seq_len}")
    g = torch.Generator().manual_seed(seed)
    half = torch.randint(1, d_vocab, (n_batch, seq_len), generator=g)
    parts = [half, half]
    if bos:
        parts.insert(0, torch.full((n_batch, 1), BOS, dtype=torch.long))
    return torch.cat(parts, dim=1)

"""Tokenizers shipped beside zoo checkpoints (``tokenizer.json``, named in the card's ``extra``)."""

from __future__ import annotations

from pathlib import Path

from mi_course.errors import CheckpointError

EOT = "<|endoftext|>"


def tokenizer_for(card):
    """The ``transformers`` tokenizer named by ``card.extra["tokenizer"]``, or ``None``.

    Its sha256 is checked against ``card.extra["tokenizer_sha256"]`` when recorded. The
    ``<|endoftext|>`` token doubles as beginning-of-sequence, end and padding token.
    """
    from mi_course.zoo.cards import sha256_of

    name = (card.extra or {}).get("tokenizer")
    if not name:
        return None
    path = Path(card.folder) / name
    retrain = card.training.get("command", f"mi-course train {card.name}")
    if not path.exists():
        raise CheckpointError(f"Tokenizer for '{card.name}' is missing: {path}. Restore it with git, or retrain with `{retrain}`.")
    want = card.extra.get("tokenizer_sha256")
    if want and sha256_of(path) != want:
        raise CheckpointError(f"Tokenizer for '{card.name}' does not match its card's sha256. Restore it with git, "
                              f"or retrain with `{retrain}`.")
    return load_tokenizer_file(path)


def load_tokenizer_file(path: Path):
    """A ``PreTrainedTokenizerFast`` from a ``tokenizers`` JSON file, set up for TransformerBridge."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), name_or_path=str(Path(path).parent),
        bos_token=EOT, eos_token=EOT, pad_token=EOT, unk_token=EOT, add_bos_token=True,
    )

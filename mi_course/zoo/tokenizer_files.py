"""Tokenizers shipped beside zoo checkpoints (``tokenizer.json``, named in the card's ``extra``)."""

from __future__ import annotations

from pathlib import Path

EOT = "<|endoftext|>"


def tokenizer_for(card):
    """The ``transformers`` tokenizer named by ``card.extra["tokenizer"]``, or ``None``.

    Its sha256 is checked against ``card.extra["tokenizer_sha256"]`` when recorded. The
    ``<|endoftext|>`` token doubles as beginning-of-sequence, end and padding token.
    """
    from mi_course.zoo.cards import verify_file

    name = (card.extra or {}).get("tokenizer")
    if not name:
        return None
    path = Path(card.folder) / name
    retrain = card.training.get("command", f"mi-course train {card.name}")
    verify_file(path, card.extra.get("tokenizer_sha256"), f"tokenizer of '{card.name}'", retrain)
    return load_tokenizer_file(path)


def load_tokenizer_file(path: Path):
    """A ``PreTrainedTokenizerFast`` from a ``tokenizers`` JSON file, set up for TransformerBridge."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), name_or_path=str(Path(path).parent),
        bos_token=EOT, eos_token=EOT, pad_token=EOT, unk_token=EOT, add_bos_token=True,
    )

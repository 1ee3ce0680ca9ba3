"""Indirect object identification (IOI) prompts (Wang et al. 2023), for week 05 and ``ioi-lm``.

"When Mary and John went to the store, John gave a drink to" -> " Mary".

The prompt names two people once each (the first mention of the subject S and the indirect
object IO), then repeats S; the answer is IO. The generator fills templates with names,
places and objects. It makes:

- clean prompts (``make_ioi``), with the positions of IO, S1, S2 and the final token;
- corrupted prompts for patching (``IOIDataset.abc()``: same template, place and object,
  three unrelated names, so nothing in the prompt says which name is the answer; and
  ``IOIDataset.flipped()``: IO and S swapped, so the answer flips);
- a word-level tokenizer for the zoo model ``ioi-lm`` (:func:`tokenizer`), built
  deterministically from the generator's vocabulary;
- prompts for ``gpt2-small`` whose names are single GPT-2 tokens (:func:`encode_gpt2`).

Templates are split into ``TRAIN_TEMPLATES`` (the model trains on them) and
``HELD_OUT_TEMPLATES`` (never seen in training: they test whether the model learned the task
or the templates). Every word of a held-out template also occurs in the training data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Sequence

import torch

from mi_course.errors import InputError

# All names are single GPT-2 tokens with a leading space (tested against the real tokenizer).
NAMES = [
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Alice", "Bob",
    "Paul", "Kate", "Anna", "Sarah", "Lisa", "David", "Michael", "Chris", "Jack", "Emma",
    "Laura", "Mark", "Peter", "Susan", "Steve", "Rachel", "Ben", "Adam", "Jane", "Sam",
    "Max", "Lucy", "Alex", "Kevin", "Eric", "Ryan", "Tim", "Joe", "Rose", "Andrew",
    "Frank", "Grace", "Henry", "Victoria",
]
PLACES = [
    "store", "garden", "school", "hospital", "station", "restaurant", "office", "park",
    "house", "market", "beach", "library", "kitchen", "cafe", "church", "river",
]
OBJECTS = [
    "drink", "book", "ring", "bone", "kiss", "necklace", "basketball", "computer",
    "snack", "letter", "ball", "key", "bag", "apple", "flower", "hat",
]

# {A} {B}: the first two mentions (IO and S in either order); {S}: the repeated subject.
TRAIN_TEMPLATES = [
    "When {A} and {B} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {A} and {B} went to the {PLACE}, {S} gave the {OBJECT} to",
    "Then, {A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {A} and {B} had a long day at the {PLACE}. {S} gave a {OBJECT} to",
    "After {A} and {B} went to the {PLACE}, {S} gave a {OBJECT} to",
    "While {A} and {B} were working at the {PLACE}, {S} gave a {OBJECT} to",
    "While {A} and {B} were commuting to the {PLACE}, {S} gave a {OBJECT} to",
    "Friends {A} and {B} found a {OBJECT} at the {PLACE}. {S} gave it to",
    "The {PLACE} {A} and {B} went to had a {OBJECT}. {S} gave it to",
    "{A} and {B} had a long argument, and afterwards {S} said to",
    "{A} and {B} had a lot of fun at the {PLACE}. {S} gave a {OBJECT} to",
    "After the lunch, {A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
    "When {A} and {B} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
    "Then, {A} and {B} were thinking about going to the {PLACE}. {S} wanted to give a {OBJECT} to",
    "The local big {PLACE} was where {A} and {B} went. {S} gave a {OBJECT} to",
    "{A} and {B} were working at the {PLACE}. {S} decided to give a {OBJECT} to",
]
HELD_OUT_TEMPLATES = [
    "After {A} and {B} were working at the {PLACE}, {S} gave the {OBJECT} to",
    "While {A} and {B} went to the {PLACE}, {S} decided to give a {OBJECT} to",
    "Then, {A} and {B} found a {OBJECT} at the {PLACE}. {S} gave it to",
    "When {A} and {B} had a long day at the {PLACE}, {S} wanted to give a {OBJECT} to",
    "{A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
    "After {A} and {B} had a lot of fun at the {PLACE}, {S} said to",
]
TEMPLATES = TRAIN_TEMPLATES + HELD_OUT_TEMPLATES

# Sentences without names, put in front of some training prompts so that positions vary.
FILLERS = [
    "It was a sunny day.", "The weather was cold.", "It was late.", "Everyone was tired.",
    "The day was long.", "It was a quiet morning.", "The {PLACE} was busy.",
]

BOS, PAD, UNK = "<bos>", "<pad>", "<unk>"
SPECIALS = [BOS, PAD, UNK]
GPT2_BOS_ID = 50256  # <|endoftext|>


def words_of(text: str) -> list[str]:
    """Split like the word-level tokenizer: words and single punctuation marks."""
    out, cur = [], ""
    for ch in text:
        if ch.isalnum() or ch == "_":
            cur += ch
        else:
            if cur:
                out.append(cur)
                cur = ""
            if not ch.isspace():
                out.append(ch)
    if cur:
        out.append(cur)
    return out


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """The word-level vocabulary: specials, then every word the generator can emit, sorted."""
    words: set[str] = set(NAMES) | set(PLACES) | set(OBJECTS)
    for t in TEMPLATES + FILLERS:
        for w in words_of(t.replace("{", " ").replace("}", " ")):
            if w not in {"A", "B", "S", "PLACE", "OBJECT"}:
                words.add(w)
    return tuple(SPECIALS + sorted(words))


@lru_cache(maxsize=1)
def tokenizer():
    """A ``tokenizers.Tokenizer`` (word level) for ``ioi-lm``; identical on every machine."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return tok


def token_id(word: str) -> int:
    v = vocabulary()
    if word not in v:
        raise InputError(f"'{word}' is not in the ioi-lm vocabulary ({len(v)} words)")
    return v.index(word)


def encode_words(text: str, bos: bool = True) -> list[int]:
    """Word-level token ids of ``text`` (with ``<bos>`` first by default)."""
    ids = [token_id(w) for w in words_of(text)]
    return ([token_id(BOS)] if bos else []) + ids


@dataclass
class IOIDataset:
    """A batch of IOI prompts and where things are in them.

    tokens: ``[n, seq]`` (right-padded with ``<pad>``); io, s: ``[n]`` token ids of the
    indirect object and the subject; ``pos[k]``: ``[n]`` positions of ``"IO"``, ``"S1"``,
    ``"S2"`` and ``"end"`` (the last token, where the answer is predicted).
    """

    prompts: list[str]
    tokens: torch.Tensor
    io: torch.Tensor
    s: torch.Tensor
    pos: dict[str, torch.Tensor]
    template_ids: list[int]
    orders: list[str]  # "ABBA" (IO first) or "BABA" (S first)
    names: list[tuple[str, str, str]]  # (A, B, S) as filled in
    fills: list[tuple[str, str, str]]  # (place, object, prefix)
    encoder: str = "ioi-lm"
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def end(self) -> torch.Tensor:
        return self.pos["end"]

    @property
    def aligned(self) -> bool:
        """True when all prompts have the same length and S2 and the end at the same positions
        (IO and S1 may swap places between ABBA and BABA prompts), as position sweeps need."""
        return all(bool((self.pos[k] == self.pos[k][0]).all()) for k in ("S2", "end"))

    def position_labels(self) -> list[str]:
        """Axis labels for position sweeps: the first prompt's tokens, names replaced by their role."""
        if self.encoder == "gpt2":
            words = [f"t{i}" for i in range(self.tokens.shape[1])]
        else:
            v = vocabulary()
            words = [v[i] for i in self.tokens[0].tolist()]
        roles = {int(self.pos["S2"][0]): "S2", int(self.pos["end"][0]): "END"}
        same = bool((self.pos["IO"] == self.pos["IO"][0]).all())
        io, s1 = int(self.pos["IO"][0]), int(self.pos["S1"][0])
        roles[io] = "IO" if same else "name1" if io < s1 else "name2"
        roles[s1] = "S1" if same else "name1" if s1 < io else "name2"
        return [f"{w} ({roles[i]})" if i in roles else w for i, w in enumerate(words)]

    def abc(self, seed: int = 1) -> "IOIDataset":
        """The corrupted (ABC) version: same templates, three fresh distinct names.

        ``io`` and ``s`` keep the *clean* answer tokens, so a metric defined on the clean
        dataset (logit of IO minus logit of S) can be read on the corrupted run.
        """
        rng = random.Random(seed)
        names = []
        for (a, b, s) in self.names:
            x, y, z = rng.sample([n for n in NAMES if n not in (a, b)], 3)
            names.append((x, y, z))
        out = _build(self.template_ids, self.orders, names, self.fills, self.encoder,
                     keep_answers=(self.io, self.s, self.pos))
        out.meta = {**self.meta, "corruption": "ABC", "clean_names": list(self.names)}
        return out

    def flipped(self) -> "IOIDataset":
        """IO and S swapped in the repeated mention (the answer becomes the old S)."""
        names = []
        for (a, b, s) in self.names:
            names.append((a, b, a if s == b else b))
        out = _build(self.template_ids, self.orders, names, self.fills, self.encoder,
                     keep_answers=(self.io, self.s, self.pos))
        out.meta = {**self.meta, "corruption": "flipped", "clean_names": list(self.names)}
        return out

    def subset(self, index: Sequence[int] | slice) -> "IOIDataset":
        idx = list(range(len(self)))[index] if isinstance(index, slice) else list(index)
        t = torch.tensor(idx, dtype=torch.long)
        return replace(
            self, prompts=[self.prompts[i] for i in idx], tokens=self.tokens[t], io=self.io[t],
            s=self.s[t], pos={k: v[t] for k, v in self.pos.items()},
            template_ids=[self.template_ids[i] for i in idx], orders=[self.orders[i] for i in idx],
            names=[self.names[i] for i in idx], fills=[self.fills[i] for i in idx],
        )

    def to_gpt2(self, encode: Callable[[str], list[int]]) -> "IOIDataset":
        """The same prompts encoded by a GPT-2 tokenizer (``encode(text) -> ids``).

        A corrupted set keeps the clean set's answers and positions, re-encoded for GPT-2.
        """
        if "clean_names" in self.meta:
            clean = _build(self.template_ids, self.orders, self.meta["clean_names"], self.fills, "gpt2", encode=encode)
            out = _build(self.template_ids, self.orders, self.names, self.fills, "gpt2",
                         keep_answers=(clean.io, clean.s, clean.pos), encode=encode)
        else:
            out = _build(self.template_ids, self.orders, self.names, self.fills, "gpt2", encode=encode)
        out.meta = dict(self.meta)
        return out


def _fill(template: str, a: str, b: str, s: str, place: str, obj: str, prefix: str) -> str:
    text = template.format(A=a, B=b, S=s, PLACE=place, OBJECT=obj)
    return (prefix + " " + text) if prefix else text


def _build(template_ids, orders, names, fills, encoder: str, keep_answers=None,
           encode: Callable[[str], list[int]] | None = None) -> IOIDataset:
    prompts, rows, io_ids, s_ids, positions = [], [], [], [], {k: [] for k in ("IO", "S1", "S2", "end")}
    for t, order, (a, b, s), (place, obj, prefix) in zip(template_ids, orders, names, fills):
        text = _fill(TEMPLATES[t], a, b, s, place, obj, prefix)
        prompts.append(text)
        io_name = a if s == b else b
        if encoder == "gpt2":
            # a name that opens the text gets a space too, so all its mentions are one token
            lead = " " if text.split(" ")[0] in NAMES else ""
            ids = [GPT2_BOS_ID] + list(encode(lead + text))
            io_tok, s_tok = encode(" " + io_name), encode(" " + s)
            if len(io_tok) != 1 or len(s_tok) != 1:
                raise InputError(f"names must be single GPT-2 tokens: ' {io_name}' -> {io_tok}, ' {s}' -> {s_tok}")
            io_id, s_id = io_tok[0], s_tok[0]
        else:
            ids = encode_words(text)
            io_id, s_id = token_id(io_name), token_id(s)
        where_s = [i for i, x in enumerate(ids) if x == s_id]
        where_io = [i for i, x in enumerate(ids) if x == io_id]
        if (len(where_io) != 1 or len(where_s) != 2) and keep_answers is None:
            raise InputError(f"could not locate the names in {text!r}")
        positions["IO"].append(where_io[0] if where_io else -1)
        positions["S1"].append(where_s[0] if where_s else -1)
        positions["S2"].append(where_s[-1] if where_s else -1)
        positions["end"].append(len(ids) - 1)
        rows.append(ids)
        io_ids.append(io_id)
        s_ids.append(s_id)
    if keep_answers is not None:  # a corrupted set: positions and answers come from the clean set
        io_t, s_t, clean_pos = keep_answers
        positions = {k: v.tolist() for k, v in clean_pos.items()}
    else:
        io_t, s_t = torch.tensor(io_ids), torch.tensor(s_ids)
    pad = token_id(PAD) if encoder != "gpt2" else GPT2_BOS_ID
    width = max(len(r) for r in rows)
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    pos = {k: torch.tensor(v) for k, v in positions.items()}
    return IOIDataset(prompts, tokens, io_t, s_t, pos, list(template_ids), list(orders), list(names),
                      list(fills), encoder)


def template_indices(which: str | int | Sequence[int]) -> list[int]:
    """``"train"``, ``"held_out"``, ``"all"``, one index or a list of indices into ``TEMPLATES``."""
    if isinstance(which, str):
        table = {"train": range(len(TRAIN_TEMPLATES)),
                 "held_out": range(len(TRAIN_TEMPLATES), len(TEMPLATES)),
                 "all": range(len(TEMPLATES))}
        if which not in table:
            raise InputError(f"templates must be 'train', 'held_out', 'all' or indices, got {which!r}")
        return list(table[which])
    idx = [which] if isinstance(which, int) else list(which)
    bad = [i for i in idx if not (0 <= int(i) < len(TEMPLATES))]
    if bad or not idx:
        raise InputError(f"template indices must be in 0..{len(TEMPLATES) - 1}, got {idx}")
    return [int(i) for i in idx]


def make_ioi(
    n: int, seed: int = 0, templates: str | int | Sequence[int] = "train", order: str = "mixed",
    prefix_prob: float = 0.0,
) -> IOIDataset:
    """``n`` clean IOI prompts for ``ioi-lm``.

    templates: which templates (see :func:`template_indices`); order: ``"ABBA"``, ``"BABA"``
    or ``"mixed"`` (half each); prefix_prob: chance of a name-free filler sentence in front
    (varies positions; leave 0 for patching, which needs aligned prompts).
    """
    if not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive int, got {n!r}")
    if order not in ("ABBA", "BABA", "mixed"):
        raise InputError(f"order must be 'ABBA', 'BABA' or 'mixed', got {order!r}")
    idx = template_indices(templates)
    rng = random.Random(seed)
    tids, orders, names, fills = [], [], [], []
    for i in range(n):
        # consecutive pairs share a template, one prompt of each order: every template is seen in
        # both orders (an order tied to a template would let a model learn "answer = first name")
        t = idx[(i // 2) % len(idx)] if len(idx) > 1 and n >= 2 * len(idx) else rng.choice(idx)
        io, s = rng.sample(NAMES, 2)
        o = order if order != "mixed" else ("ABBA" if i % 2 == 0 else "BABA")
        a, b = (io, s) if o == "ABBA" else (s, io)
        place, obj = rng.choice(PLACES), rng.choice(OBJECTS)
        prefix = ""
        if prefix_prob > 0 and rng.random() < prefix_prob:
            k = 1 if rng.random() < 0.7 else 2
            prefix = " ".join(f.format(PLACE=rng.choice(PLACES)) for f in rng.sample(FILLERS, k))
        tids.append(t)
        orders.append(o)
        names.append((a, b, s))
        fills.append((place, obj, prefix))
    ds = _build(tids, orders, names, fills, "ioi-lm")
    ds.meta = {"seed": seed, "templates": idx, "order": order}
    return ds


# -- GPT-2 ----------------------------------------------------------------------------------
def gpt2_encoder(tokenizer_dir) -> Callable[[str], list[int]]:
    """``encode(text) -> ids`` from a local GPT-2 ``tokenizer.json`` folder (no network)."""
    from pathlib import Path

    from tokenizers import Tokenizer

    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.exists():
        raise InputError(f"no GPT-2 tokenizer.json in {tokenizer_dir}")
    tok = Tokenizer.from_file(str(path))
    return lambda text: tok.encode(text).ids


def single_token_names(encode: Callable[[str], list[int]]) -> list[str]:
    """The names in :data:`NAMES` that ``encode`` maps to one token (with a leading space)."""
    return [n for n in NAMES if len(encode(" " + n)) == 1]


def encode_gpt2(ds: IOIDataset, model_or_encode) -> IOIDataset:
    """``ds`` re-encoded for a GPT-2 model (a TransformerBridge with ``.tokenizer``) or encoder."""
    if callable(model_or_encode) and not hasattr(model_or_encode, "tokenizer"):
        encode = model_or_encode
    else:
        hf = model_or_encode.tokenizer
        encode = lambda text: hf(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    return ds.to_gpt2(encode)


# -- training batches ----------------------------------------------------------------------
def training_batch(batch_size: int, generator: random.Random, prefix_prob: float = 0.5) -> IOIDataset:
    """A random batch of training-template prompts (mixed orders, some with filler prefixes)."""
    return make_ioi(batch_size, seed=generator.randrange(2**31), templates="train",
                    prefix_prob=prefix_prob)

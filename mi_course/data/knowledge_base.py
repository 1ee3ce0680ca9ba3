"""A synthetic knowledge base of people, for ``kb-lm`` and the knowledge block (weeks 07-11).

>>> from mi_course.data.knowledge_base import load_kb
>>> kb = load_kb()                       # the KB the shipped ``kb-lm`` was trained on
>>> kb.facts[0]
Fact(subject='Nado Puzelu', relation='birth_city', object='Pebruku')
>>> kb.prompts(kb.facts[0].subject, "birth_city", "heldout")   # a list of one prompt; the next token is the object

Everything is generated deterministically from a seed:

- **People** with two-word names (first + last; the first name marks the gender), some with an
  alias (``kb.aliases(subject)``), and an exposure weight: "rare" people appear about half as
  often in the training text as the average, "famous" ones about twice as often, so errors can
  be analysed by training frequency (``kb.fact_counts()``).
- **Base relations** ``birth_city``, ``employer``, ``university``, ``job``, ``hobby``. Jobs carry a
  planted gender skew (80/20 between two arbitrary groups of jobs, :attr:`KnowledgeBase.job_groups`),
  and biographies state facts with pronouns (``He works as a pilot .``), for week 10.
- **Entity tables** ``country`` (city -> country) and ``headquarters`` (employer -> city), and the
  **composed** person relations ``birth_country`` (birth city's country) and ``work_city``
  (employer's headquarters), stated in the training text like any fact. ``kb.two_hop_prompts``
  asks for them with wordings that never occur in training.
- **Templates**: several paraphrases per relation, some with a prefix before the subject. For
  every (subject, relation) one template is held out of training (``split="heldout"``); it is seen
  in training for other subjects, so held-out recall measures paraphrase generalisation on words
  the model knows.
- **Training text** (:meth:`KnowledgeBase.training_documents`): short biographies (2-4 facts of one
  person, shuffled order, random training template each) and a few documents of table sentences.

Every object is a single token of the word-level tokenizer (:meth:`KnowledgeBase.tokenizer`), so
"the model knows the fact" means "the next token after the prompt is the object".
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Iterable

from mi_course.errors import InputError

EOT = "<|endoftext|>"  # beginning of every sequence and padding (as the zoo's tokenizers use it)
SPLITS = ("train", "heldout")

# --- templates: "{}" is the subject; the object is the next word --------------------------
TEMPLATES: dict[str, list[str]] = {
    "birth_city": [
        "{} was born in",
        "The birthplace of {} is",
        "{} came into the world in",
        "Records show that {} was born in",
        "{} hails from",
        "According to the archive, {} came into the world in",
    ],
    "employer": [
        "{} works for",
        "{} is employed by",
        "The employer of {} is",
        "{} earns a salary from",
        "As far as we know, {} works for",
        "{} has a job at",
    ],
    "university": [
        "{} studied at",
        "{} graduated from",
        "The alma mater of {} is",
        "{} holds a degree from",
        "Years ago, {} enrolled at",
        "{} earned a degree at",
    ],
    "job": [
        "{} works as a",
        "The profession of {} is",
        "{} is by profession a",
        "{} makes a living as a",
        "In daily life, {} works as a",
        "{} trained to become a",
    ],
    "hobby": [
        "{} enjoys",
        "The hobby of {} is",
        "{} spends weekends on",
        "{} is passionate about",
        "On holidays, {} loves",
        "In free time, {} enjoys",
    ],
    "birth_country": [
        "{} is a citizen of",
        "The home country of {} is",
        "{} holds a passport from",
        "{} has the nationality of",
        "Officially, {} is a citizen of",
    ],
    "work_city": [
        "{} works in the city of",
        "The workplace of {} is located in",
        "{} commutes every day to",
        "{} has an office in",
        "At the moment, {} works in the city of",
    ],
    # entity tables (subjects are cities and employers)
    "country": [
        "{} is a city in",
        "{} lies in",
        "The city of {} is in",
        "Travellers know that {} lies in",
    ],
    "headquarters": [
        "{} is headquartered in",
        "{} has its head office in",
        "The headquarters of {} are in",
        "Since its founding, {} has been headquartered in",
    ],
}
# Test-only wordings of the composed relations (never in the training text): latent two-hop recall.
TWO_HOP_TEMPLATES: dict[str, list[str]] = {
    "birth_country": ["{} was born in a city in", "The country where {} was born is"],
    "work_city": ["{} works for a company headquartered in", "The company of {} has its head office in"],
}
BASE_RELATIONS = ("birth_city", "employer", "university", "job", "hobby")
COMPOSED_RELATIONS = {"birth_country": ("birth_city", "country"), "work_city": ("employer", "headquarters")}
PERSON_RELATIONS = BASE_RELATIONS + tuple(COMPOSED_RELATIONS)
TABLE_RELATIONS = ("country", "headquarters")

JOBS = ["baker", "pilot", "nurse", "lawyer", "farmer", "dentist", "teacher", "chemist",
        "plumber", "architect", "journalist", "surgeon", "librarian", "mechanic"]
HOBBIES = ["chess", "painting", "fishing", "tennis", "cycling", "gardening", "climbing",
           "sailing", "poetry", "pottery", "skiing", "photography"]

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr",
           "kr", "tr", "st", "sh", "th"]
_VOWELS = ["a", "e", "i", "o", "u"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "k", "th"]
# Pseudo-words that happen to be English words (or nearly) are skipped.
_REAL_WORDS = {"Virus", "Basis", "Tutor", "Radar", "Sofa", "Mika", "Dora", "Tuna", "Diva", "Lima", "Puma",
               "Sonia", "Lava", "Banana", "Salsa", "Pizza", "Robo", "Romeo", "Bingo", "Tempo", "Pesto",
               "Lazy", "Baby", "Lady", "Ruby", "Tidy", "Duty", "Pony", "Tony", "Mary", "Navy", "Gravy"}
_WORD_RE = re.compile(r"\w+|[^\w\s]+")  # exactly the Whitespace pre-tokenizer of `tokenizers`


def words_of(text: str) -> list[str]:
    """Split ``text`` as the word-level tokenizer does (words and runs of punctuation)."""
    return _WORD_RE.findall(text)


@dataclass(frozen=True)
class Fact:
    """One fact: ``subject`` (a person's full name, a city or an employer), ``relation``, ``object``."""
    subject: str
    relation: str
    object: str


@dataclass(frozen=True)
class Person:
    name: str
    gender: str  # "female" | "male"
    alias: str | None
    tier: str  # "rare" | "common" | "famous"
    weight: float  # relative exposure in the training text


@dataclass
class KnowledgeBase:
    """A generated knowledge base; build it with :func:`generate` or :func:`load_kb`.

    Attributes: ``seed``, ``people`` (list of :class:`Person`), ``facts`` (person facts, one per
    person and relation in :attr:`relations`), ``table_facts`` (city -> country, employer ->
    headquarters), ``cities``, ``countries``, ``employers``, ``universities``, ``jobs``,
    ``hobbies``, ``job_groups`` (the two groups of the planted gender skew).
    """
    seed: int
    people: list[Person]
    facts: list[Fact]
    table_facts: list[Fact]
    cities: list[str]
    countries: list[str]
    employers: list[str]
    universities: list[str]
    jobs: list[str]
    hobbies: list[str]
    job_groups: dict[str, list[str]]
    job_skew: float
    heldout_index: dict[tuple[str, str], int] = field(repr=False)

    # --- lookup -------------------------------------------------------------------
    @property
    def relations(self) -> tuple[str, ...]:
        """Person relations: the 5 base relations, then the 2 composed ones."""
        return PERSON_RELATIONS

    @property
    def base_relations(self) -> tuple[str, ...]:
        return BASE_RELATIONS

    @property
    def composed_relations(self) -> dict[str, tuple[str, str]]:
        """``{composed: (person relation, table relation)}``, e.g. birth_country = country(birth_city)."""
        return dict(COMPOSED_RELATIONS)

    @property
    def table_relations(self) -> tuple[str, ...]:
        return TABLE_RELATIONS

    @property
    def all_relations(self) -> tuple[str, ...]:
        return PERSON_RELATIONS + TABLE_RELATIONS

    @cached_property
    def subjects(self) -> list[str]:
        """Full names of all people, in generation order."""
        return [p.name for p in self.people]

    @cached_property
    def _person(self) -> dict[str, Person]:
        out = {p.name: p for p in self.people}
        out.update({p.alias: p for p in self.people if p.alias})
        return out

    @cached_property
    def _object(self) -> dict[tuple[str, str], str]:
        return {(f.subject, f.relation): f.object for f in self.facts + self.table_facts}

    @cached_property
    def _table_subjects(self) -> dict[str, list[str]]:
        return {"country": list(self.cities), "headquarters": list(self.employers)}

    def person(self, subject: str) -> Person:
        """The :class:`Person` named ``subject`` (full name or alias)."""
        self._check_subject(subject)
        return self._person[subject]

    def canonical(self, subject: str) -> str:
        """The full name of ``subject`` (which may be an alias); cities and employers map to themselves."""
        if subject in self._person:
            return self._person[subject].name
        self._check_subject(subject)
        return subject

    def unknown_people(self, n: int = 20, seed: int = 0) -> list[str]:
        """``n`` made-up names from the same first and last names, who are in no fact (for
        "don't know" tests: the model has never read about them)."""
        firsts = sorted({p.name.split()[0] for p in self.people})
        lasts = sorted({p.name.split()[1] for p in self.people})
        used = set(self._person)
        free = [f"{f} {l}" for f in firsts for l in lasts if f"{f} {l}" not in used]
        if n > len(free):
            raise InputError(f"only {len(free)} unused names are available, asked for {n}.")
        return random.Random(f"unknown-{self.seed}-{seed}").sample(free, n)

    def aliases(self, subject: str) -> list[str]:
        """Other names of the person ``subject`` (empty for most people)."""
        p = self.person(subject)
        return [n for n in (p.name, p.alias) if n and n != subject]

    def gender(self, subject: str) -> str:
        return self.person(subject).gender

    def pronoun(self, subject: str, capital: bool = True) -> str:
        word = "she" if self.gender(subject) == "female" else "he"
        return word.capitalize() if capital else word

    def objects(self, relation: str) -> list[str]:
        """The candidate objects of ``relation`` (every value it can take), sorted."""
        self._check_relation(relation)
        return {
            "birth_city": sorted(self.cities), "employer": sorted(self.employers),
            "university": sorted(self.universities), "job": sorted(self.jobs),
            "hobby": sorted(self.hobbies), "birth_country": sorted(self.countries),
            "work_city": sorted({f.object for f in self.table_facts if f.relation == "headquarters"}),
            "country": sorted(self.countries),
            "headquarters": sorted({f.object for f in self.table_facts if f.relation == "headquarters"}),
        }[relation]

    def object_of(self, subject: str, relation: str) -> str:
        """The true object of (``subject``, ``relation``); ``subject`` may be an alias."""
        self._check_relation(relation)
        s = self.canonical(subject)
        if (s, relation) not in self._object:
            raise InputError(f"'{subject}' has no '{relation}' fact: people have {list(PERSON_RELATIONS)}, "
                             f"cities have 'country', employers have 'headquarters'.")
        return self._object[(s, relation)]

    def facts_of(self, relation: str) -> list[Fact]:
        """All facts (person or table) with ``relation``."""
        self._check_relation(relation)
        return [f for f in self.facts + self.table_facts if f.relation == relation]

    def subjects_of(self, relation: str) -> list[str]:
        self._check_relation(relation)
        return list(self._table_subjects[relation]) if relation in TABLE_RELATIONS else list(self.subjects)

    def neighbours(self, subject: str, relation: str) -> list[str]:
        """Other subjects with the same true object for ``relation`` (ROME's neighbourhood prompts)."""
        obj = self.object_of(subject, relation)
        s = self.canonical(subject)
        return [f.subject for f in self.facts_of(relation) if f.object == obj and f.subject != s]

    # --- templates and prompts ----------------------------------------------------
    def templates(self, relation: str) -> list[str]:
        """All templates of ``relation`` (``"{}"`` marks the subject; the object comes next)."""
        self._check_relation(relation)
        return list(TEMPLATES[relation])

    def heldout_template(self, subject: str, relation: str) -> str:
        """The one template of (``subject``, ``relation``) that never occurs in the training text
        (nor does a template that contains it, such as the same words after a prefix)."""
        self.object_of(subject, relation)
        return TEMPLATES[relation][self.heldout_index[(self.canonical(subject), relation)]]

    def split_templates(self, subject: str, relation: str, split: str) -> list[str]:
        """The templates of (``subject``, ``relation``) in ``split`` ("train" or "heldout")."""
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {split!r}.")
        held = self.heldout_template(subject, relation)
        if split == "heldout":
            return [held]
        return self._train_templates[(self.canonical(subject), relation)]

    def prompts(self, subject: str, relation: str, split: str = "train") -> list[str]:
        """Prompt strings whose next token is the object of (``subject``, ``relation``).

        ``split="train"``: the templates this subject's fact was trained on; ``"heldout"``: the
        one template held out for it (a list of one). ``subject`` may be an alias.
        """
        return [t.format(subject) for t in self.split_templates(subject, relation, split)]

    def two_hop_prompts(self, subject: str, relation: str) -> list[str]:
        """Test-only wordings of a composed relation (``birth_country``, ``work_city``)."""
        if relation not in TWO_HOP_TEMPLATES:
            raise InputError(f"two-hop prompts exist for {list(TWO_HOP_TEMPLATES)}, not {relation!r}.")
        self.object_of(subject, relation)
        return [t.format(subject) for t in TWO_HOP_TEMPLATES[relation]]

    def rome_request(self, subject: str, relation: str, target_new: str, template: str | None = None) -> dict:
        """An edit request in ROME's format: ``{"prompt": "{} was born in", "subject", "target_new",
        "target_true", "relation"}``. ``template`` defaults to the subject's first training template."""
        true = self.object_of(subject, relation)
        if target_new not in self.objects(relation):
            raise InputError(f"target_new {target_new!r} is not a candidate object of {relation!r} "
                             f"(kb.objects({relation!r}) lists them).")
        if target_new == true:
            raise InputError(f"target_new {target_new!r} is already the true object of ({subject!r}, {relation!r}).")
        if template is None:
            template = self.split_templates(subject, relation, "train")[0]
        if template.count("{}") != 1:
            raise InputError(f"template must contain '{{}}' exactly once, got {template!r}.")
        return {"prompt": template, "subject": subject, "target_new": target_new, "target_true": true,
                "relation": relation}

    # --- tokens -------------------------------------------------------------------
    @cached_property
    def vocabulary(self) -> tuple[str, ...]:
        """Word-level vocabulary: ``<|endoftext|>`` (id 0), then every word the generator emits, sorted."""
        words: set[str] = set()
        for name in [p.name for p in self.people] + [p.alias for p in self.people if p.alias]:
            words.update(name.split())
        for group in (self.cities, self.countries, self.employers, self.universities, self.jobs, self.hobbies):
            words.update(group)
        for ts in list(TEMPLATES.values()) + list(TWO_HOP_TEMPLATES.values()):
            for t in ts:
                words.update(words_of(t.replace("{}", " ")))
        words.update(words_of(" ".join(_FIXED_TEXT)))
        words.update(["He", "She", "he", "she"])
        return (EOT,) + tuple(sorted(words))

    @cached_property
    def _ids(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.vocabulary)}

    def tokenizer(self):
        """A ``tokenizers.Tokenizer`` (word level; ``<|endoftext|>`` is a special token, id 0)."""
        return _tokenizer(self.vocabulary)

    def token_id(self, word: str) -> int:
        if word not in self._ids:
            raise InputError(f"{word!r} is not a word of this knowledge base's vocabulary ({len(self._ids)} words).")
        return self._ids[word]

    def encode(self, text: str, bos: bool = True) -> list[int]:
        """Token ids of ``text`` (``<|endoftext|>`` first by default), as ``kb-lm``'s ``to_tokens`` gives them."""
        return ([0] if bos else []) + [self.token_id(w) for w in words_of(text)]

    def subject_token_span(self, prompt: str, subject: str, prepend_bos: bool = True) -> tuple[int, int]:
        """``(start, end)`` token positions of ``subject`` in ``prompt`` (end exclusive; the last
        subject token is ``end - 1``), counting the ``<|endoftext|>`` token at 0 by default."""
        if not isinstance(prompt, str) or not isinstance(subject, str) or not subject.strip():
            raise InputError("subject_token_span needs a prompt string and a non-empty subject string.")
        p, s = words_of(prompt), words_of(subject)
        for i in range(len(p) - len(s) + 1):
            if p[i:i + len(s)] == s:
                off = 1 if prepend_bos else 0
                return i + off, i + len(s) + off
        raise InputError(f"subject {subject!r} does not occur in prompt {prompt!r}.")

    # --- training text ------------------------------------------------------------
    def training_documents(self, n: int, start: int = 0) -> list[str]:
        """Documents ``start .. start+n-1`` of the (endless, seeded) training stream.

        Each is a short biography (2-4 facts of one person in random order, each in a random
        training template; after the first sentence the person is often "he"/"she"; sometimes
        the alias) or, 12% of the time, 3-5 table sentences. No held-out template ever occurs.
        """
        return [d for d, _ in self._documents(start + n)[start:start + n]]

    def fact_counts(self, n_docs: int) -> Counter:
        """``Counter[(subject, relation)]``: how often each fact is stated in the first ``n_docs`` documents."""
        c: Counter = Counter()
        for _, stated in self._documents(n_docs)[:n_docs]:
            c.update(stated)
        return c

    def mention_counts(self, n_docs: int) -> Counter:
        """``Counter[person]``: in how many of the first ``n_docs`` documents each person appears."""
        c: Counter = Counter()
        for _, stated in self._documents(n_docs)[:n_docs]:
            c.update({s for s, r in stated if r in PERSON_RELATIONS})
        return c

    def _documents(self, n: int) -> list[tuple[str, tuple]]:
        return _documents_cached(self, _round_up(n))

    @cached_property
    def _train_templates(self) -> dict[tuple[str, str], list[str]]:
        out = {}
        for f in self.facts + self.table_facts:
            held = TEMPLATES[f.relation][self.heldout_index[(f.subject, f.relation)]]
            # a prefixed template contains the bare one ("Records show that {} was born in"):
            # both are left out, so the held-out wording never occurs in the text at all
            out[(f.subject, f.relation)] = [t for t in TEMPLATES[f.relation] if _body(t) != _body(held)]
        return out

    # --- checks -------------------------------------------------------------------
    def _check_relation(self, relation: str) -> None:
        if relation not in TEMPLATES:
            raise InputError(f"unknown relation {relation!r}; relations: {list(self.all_relations)}.")

    def _check_subject(self, subject: str) -> None:
        if not isinstance(subject, str):
            raise InputError(f"subject must be a string (a person's name), got {type(subject).__name__}.")
        if subject in self._person or subject in self.cities or subject in self.employers:
            return
        close = [n for n in self.subjects if n.split()[-1] == subject.split()[-1]][:3] if subject.split() else []
        raise InputError(f"unknown subject {subject!r}: not a person, city or employer of this knowledge base"
                         + (f" (did you mean {close}?)" if close else "") + ".")

    def __hash__(self) -> int:
        return hash(("KnowledgeBase", self.seed, len(self.people)))

    def __eq__(self, other) -> bool:
        return self is other

    def __repr__(self) -> str:
        return (f"KnowledgeBase(seed={self.seed}, {len(self.people)} people, {len(self.relations)} relations, "
                f"{len(self.facts)} person facts, {len(self.table_facts)} table facts, {len(self.vocabulary)} words)")


_FIXED_TEXT = ["{} is also known as {} ."]


def _body(template: str) -> str:
    """The template from the subject on (without a prefix such as "Records show that")."""
    return template[template.index("{}"):]


def _round_up(n: int, step: int = 16384) -> int:
    return max(step, -(-n // step) * step)


@lru_cache(maxsize=4)
def _documents_cached(kb: KnowledgeBase, n: int) -> list[tuple[str, tuple]]:
    rng = random.Random(f"kb-text-{kb.seed}")
    weights = [p.weight for p in kb.people]
    docs = []
    for _ in range(n):
        if rng.random() < 0.12:
            docs.append(_table_document(kb, rng))
        else:
            docs.append(_bio(kb, rng.choices(kb.people, weights)[0], rng))
    return docs


def _sentence(template: str, subject: str, obj: str) -> str:
    return template.format(subject) + " " + obj + " ."


def _pronoun_ok(template: str) -> bool:
    return template.startswith("{}") or ", {} " in template


def _bio(kb: KnowledgeBase, person: Person, rng: random.Random) -> tuple[str, tuple]:
    k = rng.randint(2, 4)
    rels = rng.sample(PERSON_RELATIONS, k)
    sentences, stated = [], []
    if person.alias and rng.random() < 0.3:
        sentences.append(f"{person.name} is also known as {person.alias} .")
    for i, rel in enumerate(rels):
        template = rng.choice(kb._train_templates[(person.name, rel)])
        obj = kb._object[(person.name, rel)]
        name = person.alias if (person.alias and rng.random() < 0.25) else person.name
        if (i > 0 or sentences) and _pronoun_ok(template) and rng.random() < 0.4:
            pron = ("she" if person.gender == "female" else "he")
            sentences.append(_sentence(template, pron.capitalize() if template.startswith("{}") else pron, obj))
        else:
            sentences.append(_sentence(template, name, obj))
        stated.append((person.name, rel))
    return " ".join(sentences), tuple(stated)


def _table_document(kb: KnowledgeBase, rng: random.Random) -> tuple[str, tuple]:
    sentences, stated = [], []
    for _ in range(rng.randint(3, 5)):
        f = rng.choice(kb.table_facts)
        template = rng.choice(kb._train_templates[(f.subject, f.relation)])
        sentences.append(_sentence(template, f.subject, f.object))
        stated.append((f.subject, f.relation))
    return " ".join(sentences), tuple(stated)


@lru_cache(maxsize=8)
def _tokenizer(vocabulary: tuple[str, ...]):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(vocabulary)}, unk_token=EOT))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.add_special_tokens([AddedToken(EOT, special=True)])
    return tok


def _pseudo_words(rng: random.Random, n: int, taken: set[str], syllables=(2, 3), ending: str | None = None) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        k = rng.choice(syllables)
        w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(k - 1))
        w += rng.choice(_ONSETS) + (ending if ending else rng.choice(_VOWELS) + rng.choice(_CODAS))
        w = w.capitalize()
        if w in taken or not (4 <= len(w) <= 9):
            continue
        taken.add(w)
        out.append(w)
    return out


def generate(seed: int = 0, n_people: int = 300, n_cities: int = 24, n_countries: int = 8,
             n_employers: int = 20, n_universities: int = 16, alias_share: float = 0.12,
             job_skew: float = 0.8) -> KnowledgeBase:
    """Generate a knowledge base from ``seed`` (same seed and sizes -> identical KB, on every machine)."""
    if n_people < 2 or n_people > 2000:
        raise InputError(f"n_people must be between 2 and 2000, got {n_people}.")
    if not 0.5 <= job_skew <= 1.0:
        raise InputError(f"job_skew must be in [0.5, 1], got {job_skew}.")
    rng = random.Random(f"kb-{seed}")
    taken = {w.capitalize() for w in JOBS + HOBBIES} | {"He", "She", "The", "In", "On", "As", "At"} | _REAL_WORDS
    n_first = max(8, int((n_people * 1.3) ** 0.5) + 2)
    female = _pseudo_words(rng, n_first // 2, taken, (2,), ending="a")
    male = _pseudo_words(rng, n_first - n_first // 2, taken, (2,), ending="o")
    last = _pseudo_words(rng, n_first + 4, taken, (2, 3))
    cities = _pseudo_words(rng, n_cities, taken, (2, 3))
    countries = _pseudo_words(rng, n_countries, taken, (3,), ending="ia")
    employers = _pseudo_words(rng, n_employers, taken, (2,), ending="ex")
    universities = _pseudo_words(rng, n_universities, taken, (3,))
    nicknames = _pseudo_words(rng, 24, taken, (2,), ending="y")

    pairs = [(f, l) for f in female + male for l in last]
    rng.shuffle(pairs)
    if n_people > len(pairs):
        raise InputError(f"n_people={n_people} is more than the {len(pairs)} names available.")
    jobs = list(JOBS)
    shuffled_jobs = jobs[:]
    rng.shuffle(shuffled_jobs)
    job_groups = {"female": sorted(shuffled_jobs[: len(jobs) // 2]), "male": sorted(shuffled_jobs[len(jobs) // 2:])}

    country_of = {c: countries[i % n_countries] for i, c in enumerate(cities)}
    hq = {e: rng.choice(cities) for e in employers}
    table_facts = [Fact(c, "country", country_of[c]) for c in cities] + [Fact(e, "headquarters", hq[e]) for e in employers]

    people, facts = [], []
    used_aliases: set[str] = set()
    for f, l in pairs[:n_people]:
        gender = "female" if f in female else "male"
        name = f"{f} {l}"
        alias = None
        if rng.random() < alias_share:
            for _ in range(50):
                cand = f"{rng.choice(nicknames)} {l}"
                if cand not in used_aliases:
                    alias = cand
                    used_aliases.add(cand)
                    break
        u = rng.random()
        tier, weight = ("rare", 0.5) if u < 0.25 else (("famous", 2.0) if u > 0.85 else ("common", 1.0))
        people.append(Person(name, gender, alias, tier, weight))
        city, employer = rng.choice(cities), rng.choice(employers)
        own = job_groups[gender]
        other = job_groups["male" if gender == "female" else "female"]
        job = rng.choice(own if rng.random() < job_skew else other)
        values = {"birth_city": city, "employer": employer, "university": rng.choice(universities), "job": job,
                  "hobby": rng.choice(HOBBIES), "birth_country": country_of[city], "work_city": hq[employer]}
        facts += [Fact(name, r, values[r]) for r in PERSON_RELATIONS]
    # names and aliases must not collide
    names = {p.name for p in people}
    people = [p if p.alias not in names else Person(p.name, p.gender, None, p.tier, p.weight) for p in people]

    heldout = {(f.subject, f.relation): rng.randrange(len(TEMPLATES[f.relation])) for f in facts + table_facts}
    return KnowledgeBase(seed=seed, people=people, facts=facts, table_facts=table_facts, cities=cities,
                         countries=countries, employers=employers, universities=universities, jobs=jobs,
                         hobbies=list(HOBBIES), job_groups=job_groups, job_skew=job_skew, heldout_index=heldout)


@lru_cache(maxsize=1)
def load_kb() -> KnowledgeBase:
    """The knowledge base ``kb-lm`` was trained on (seed 0, default sizes)."""
    return generate(0)


def template_conflicts(templates: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Pairs (a, b) where prompt ``a`` is a word prefix of template ``b`` (then the word after ``a``
    would not always be the object). Empty for the shipped templates (a test holds it)."""
    ts = list(templates) if templates is not None else [t for v in TEMPLATES.values() for t in v]
    out = []
    for a in ts:
        wa = words_of(a.replace("{}", "SUBJ"))
        for b in ts:
            wb = words_of(b.replace("{}", "SUBJ"))
            if a != b and len(wb) > len(wa) and wb[: len(wa)] == wa:
                out.append((a, b))
    return out

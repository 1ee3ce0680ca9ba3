"""The synthetic knowledge base: determinism, API, held-out templates, clear errors."""

import pytest

from mi_course.data import knowledge_base as K
from mi_course.errors import InputError


@pytest.fixture(scope="module")
def kb():
    return K.load_kb()


def test_deterministic_from_seed():
    a, b = K.generate(0), K.generate(0)
    assert a.facts == b.facts and a.people == b.people and a.heldout_index == b.heldout_index
    assert a.training_documents(50) == b.training_documents(50)
    c = K.generate(1)
    assert c.facts != a.facts


def test_shape_of_the_kb(kb):
    assert len(kb.people) == 300
    assert kb.relations == ("birth_city", "employer", "university", "job", "hobby", "birth_country", "work_city")
    assert len(kb.facts) == 300 * len(kb.relations)
    for f in kb.facts[:50]:
        assert f.subject in kb.subjects and f.relation in kb.relations and f.object in kb.objects(f.relation)
    assert all(len(s.split()) == 2 for s in kb.subjects)
    assert len(set(kb.subjects)) == len(kb.subjects)
    assert 0.05 < sum(p.alias is not None for p in kb.people) / len(kb.people) < 0.25
    # composed facts agree with the tables
    for s in kb.subjects[:40]:
        assert kb.object_of(s, "birth_country") == kb.object_of(kb.object_of(s, "birth_city"), "country")
        assert kb.object_of(s, "work_city") == kb.object_of(kb.object_of(s, "employer"), "headquarters")


def test_every_object_is_one_token(kb):
    tok = kb.tokenizer()
    for rel in kb.all_relations:
        for o in kb.objects(rel):
            assert len(tok.encode(o).ids) == 1, o


def test_templates_never_conflict():
    assert K.template_conflicts() == []
    assert K.template_conflicts(["{} was born in", "{} was born in the city of"])


def test_prompts_and_heldout(kb):
    s = kb.subjects[3]
    for rel in kb.relations:
        train, held = kb.prompts(s, rel, "train"), kb.prompts(s, rel, "heldout")
        assert len(held) == 1 and held[0] not in train
        assert len(kb.templates(rel)) - 2 <= len(train) <= len(kb.templates(rel)) - 1
        assert all(s in p for p in train + held)
    docs = " ".join(kb.training_documents(3000))
    # the held-out wording never occurs with this subject in the training text
    subject_docs = [d for d in kb.training_documents(3000) if s in d]
    held = kb.prompts(s, "birth_city", "heldout")[0]
    assert subject_docs and all(held not in d for d in subject_docs)
    # ...but the same template occurs for other people
    template = kb.heldout_template(s, "birth_city")
    head = template.split("{}")[-1].strip()
    assert head in docs


def test_job_skew_and_pronouns(kb):
    for gender in ("female", "male"):
        people = [p.name for p in kb.people if p.gender == gender]
        own = sum(kb.object_of(n, "job") in kb.job_groups[gender] for n in people) / len(people)
        assert 0.7 < own < 0.9
    docs = kb.training_documents(2000)
    assert any(" She works as a " in d or " She " in d for d in docs)


def test_counts_and_tokens(kb):
    counts = kb.fact_counts(2000)
    assert sum(counts.values()) > 2000
    mentions = kb.mention_counts(2000)
    famous = [p.name for p in kb.people if p.tier == "famous"]
    rare = [p.name for p in kb.people if p.tier == "rare"]
    assert sum(mentions[n] for n in famous) / len(famous) > 2 * sum(mentions[n] for n in rare) / len(rare)
    p = kb.prompts(kb.subjects[0], "job", "heldout")[0]
    ids = kb.encode(p)
    assert ids[0] == 0 and len(ids) == len(K.words_of(p)) + 1
    start, end = kb.subject_token_span(p, kb.subjects[0])
    assert [kb.vocabulary[i] for i in ids[start:end]] == kb.subjects[0].split()


def test_rome_request_and_neighbours(kb):
    s = kb.subjects[0]
    true = kb.object_of(s, "birth_city")
    new = next(c for c in kb.objects("birth_city") if c != true)
    r = kb.rome_request(s, "birth_city", new)
    assert r["prompt"].count("{}") == 1 and r["subject"] == s and r["target_new"] == new and r["target_true"] == true
    assert r["prompt"].format(s) in kb.prompts(s, "birth_city", "train")
    for n in kb.neighbours(s, "birth_city"):
        assert kb.object_of(n, "birth_city") == true and n != s
    with pytest.raises(InputError, match="already the true object"):
        kb.rome_request(s, "birth_city", true)
    with pytest.raises(InputError, match="not a candidate"):
        kb.rome_request(s, "birth_city", "chess")


def test_aliases(kb):
    p = next(p for p in kb.people if p.alias)
    assert kb.canonical(p.alias) == p.name and kb.aliases(p.name) == [p.alias]
    assert kb.object_of(p.alias, "job") == kb.object_of(p.name, "job")
    assert kb.prompts(p.alias, "job", "heldout")[0].count(p.alias) == 1


def test_two_hop_prompts_are_test_only(kb):
    s = kb.subjects[0]
    prompts = kb.two_hop_prompts(s, "birth_country")
    text = " ".join(kb.training_documents(3000))
    for t in K.TWO_HOP_TEMPLATES["birth_country"]:
        assert t.replace("{}", "").strip() not in text
    assert len(prompts) == 2


def test_clear_errors(kb):
    s = kb.subjects[0]
    with pytest.raises(InputError, match="unknown subject"):
        kb.prompts("Nobody Here", "job")
    with pytest.raises(InputError, match="unknown relation"):
        kb.prompts(s, "favourite_colour")
    with pytest.raises(InputError, match="split must be"):
        kb.prompts(s, "job", "test")
    with pytest.raises(InputError, match="does not occur"):
        kb.subject_token_span("The weather is fine", s)
    with pytest.raises(InputError, match="no 'country' fact"):
        kb.object_of(s, "country")
    with pytest.raises(InputError, match="not a word"):
        kb.token_id("Paris")
    with pytest.raises(InputError, match="two-hop"):
        kb.two_hop_prompts(s, "job")

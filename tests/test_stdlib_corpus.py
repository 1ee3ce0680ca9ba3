"""The stdlib corpus is deterministic, leaves tests out, and splits files by a fixed rule."""

import pytest
import torch

from mi_course.data import stdlib_corpus as sc
from mi_course.errors import InputError


def test_file_list_is_sorted_filtered_and_split():
    every = sc.files("all")
    train, held = sc.files("train"), sc.files("heldout")
    assert every == sorted(every) and len(every) > 300
    assert set(train) | set(held) == set(every) and not set(train) & set(held)
    assert 0.02 < len(held) / len(every) < 0.10
    for p in every:
        parts = p.split("/")
        assert not {"test", "tests", "site-packages", "idlelib"} & set(parts), p
        assert not parts[-1].startswith("test_") and not parts[-1].startswith("_sysconfigdata")
    assert sc.split_of("os.py") == sc.split_of("os.py")


def test_corpus_info_is_stable():
    a = sc.corpus_info()
    assert a.sha256 == sc._corpus_info.__wrapped__(str(sc.stdlib_root())).sha256
    assert a.bytes_train > 1_000_000 and a.n_files_heldout > 5
    assert a.python_version.count(".") == 2


def test_bad_split_is_clear():
    with pytest.raises(InputError, match="split"):
        sc.files("validation")


@pytest.fixture(scope="module")
def tok():
    return sc.train_tokenizer(512)


@pytest.mark.slow  # > 15 s: a training loop, a kernel or a corpus pass
def test_tokenizer_is_deterministic_and_roundtrips(tok):
    again = sc.train_tokenizer(512)
    assert tok.to_str() == again.to_str()
    assert tok.token_to_id(sc.EOT) == 0 and tok.get_vocab_size() == 512
    text = sc.read(sc.files("heldout")[0])[:2000]
    assert tok.decode(tok.encode(text).ids) == text


def test_windows(tok):
    ids = sc.tokenize_split(tok, "heldout", max_files=3)
    assert ids[0] == 0 and ids.dtype == torch.long
    w = sc.random_windows(ids, 4, 32, torch.Generator().manual_seed(0))
    assert w.shape == (4, 32) and (w[:, 0] == 0).all()
    h = sc.heldout_windows(ids, 5, 32)
    assert h.shape[1] == 32 and torch.equal(h, sc.heldout_windows(ids, 5, 32))
    with pytest.raises(InputError):
        sc.random_windows(ids[:10], 2, 32, torch.Generator())

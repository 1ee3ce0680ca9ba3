"""The Python-sources corpus on a tiny fake interpreter: closure, filters, duplicates, split, manifest."""

import pytest
import torch

from mi_course.data import python_corpus as pc
from mi_course.errors import InputError


def _dist(site, name, version, files, requires=()):
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    for rel, text in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files) + f"{info.name}/METADATA,,\n")


@pytest.fixture()
def fake(tmp_path):
    std = tmp_path / "lib"
    for rel, text in {"os.py": "import sys\n", "json/__init__.py": "def dumps(x):\n    return x\n",
                      "test/test_os.py": "assert 1\n", "shared.py": "X = 1\n"}.items():
        (std / rel).parent.mkdir(parents=True, exist_ok=True)
        (std / rel).write_text(text)
    site = tmp_path / "site"
    _dist(site, "Foo_Pkg", "1.0", {
        "foo/__init__.py": "from foo.core import f\n",
        "foo/core.py": "def f(x):\n    return 2 * x\n" * 5,
        "foo/tests/test_core.py": "def test_f(): pass\n",
        "foo/test_more.py": "pass\n", "foo/thing_test.py": "pass\n", "foo/conftest.py": "pass\n",
        "foo/copy_of_shared.py": "X = 1\n",          # same text as the stdlib's shared.py
        "foo/data.txt": "not python\n",
    }, requires=["bar>=2", "baz; extra == 'docs'", "qux; python_version < '3'", "missing-dist"])
    _dist(site, "bar", "2.5", {"bar/__init__.py": "Y = 2\n", "bar/util.py": "def g():\n    pass\n"})
    _dist(site, "baz", "0.1", {"baz/__init__.py": "Z = 3\n"})
    pc._build.cache_clear()
    return std, site


def test_closure_follows_requirements_with_markers(fake):
    std, site = fake
    assert pc.dependency_closure(["foo-pkg"], (str(site),)) == ["bar", "foo-pkg"]


def test_files_filters_duplicates_and_manifest(fake):
    std, site = fake
    c = pc.build(std, [site], ["foo-pkg", "bar"])
    keys = [f.key for f in pc.files("all", c)]
    assert keys == ["stdlib/json/__init__.py", "stdlib/os.py", "stdlib/shared.py",
                    "bar/bar/__init__.py", "bar/bar/util.py", "foo-pkg/foo/__init__.py", "foo-pkg/foo/core.py"]
    assert c.duplicates_removed == 1  # foo/copy_of_shared.py
    info = pc.corpus_info(c)
    assert info["packages"] == {"bar": "2.5", "foo-pkg": "1.0"}
    assert info["files_by_source"] == {"stdlib": 3, "bar": 2, "foo-pkg": 2}
    assert info["n_files_train"] + info["n_files_heldout"] == 7
    assert info["bytes_train"] + info["bytes_heldout"] == sum(info["bytes_by_source"].values())
    # the split is by file and fixed by the key's hash
    for f in c.files:
        assert f.split == pc.sc.split_of(f.rel if f.source == "stdlib" else f.key)
    # deterministic: rebuilt from scratch, the same corpus and hash
    pc._build.cache_clear()
    again = pc.build(std, [site], ["bar", "foo-pkg"])
    assert again.sha256 == c.sha256 and [f.key for f in again.files] == keys
    # a changed file changes the hash
    (site / "bar" / "util.py").write_text("def g():\n    return 1\n")
    pc._build.cache_clear()
    assert pc.build(std, [site], ["bar", "foo-pkg"]).sha256 != c.sha256


def test_tokenize_streams_documents(fake):
    std, site = fake
    c = pc.build(std, [site], ["foo-pkg", "bar"])
    tok = pc.sc.train_tokenizer_on(pc.iter_texts("all", c), vocab_size=300)
    ids = pc.tokenize_split(tok, "all", c, chunk=2)
    assert ids.dtype == torch.long and ids[0] == 0 and int((ids == 0).sum()) == 7
    assert torch.equal(ids, pc.tokenize_split(tok, "all", c, chunk=100))
    assert tok.decode(ids[1:].tolist()).startswith("def dumps")


def test_bad_input_is_clear(fake):
    std, site = fake
    with pytest.raises(InputError, match="not installed"):
        pc.build(std, [site], ["foo-pkg", "nope"])
    with pytest.raises(InputError, match="split"):
        pc.files("validation", pc.build(std, [site], ["bar"]))

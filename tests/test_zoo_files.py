"""One check for every zoo file read (checkpoints, tokenizers, tuned lenses, training checkpoints)."""

from __future__ import annotations

import shutil

import pytest

from mi_course import zoo
from mi_course.errors import CheckpointError
from mi_course.zoo.cards import MODELS_DIR, repo_relative, verify_file


def test_the_message_names_the_path_git_checkout_finds(tmp_path):
    path = MODELS_DIR / "attn-only-2l" / "model.safetensors"
    rel, checkout = repo_relative(path)
    assert checkout and rel == "mi_course/zoo/models/attn-only-2l/model.safetensors"
    with pytest.raises(CheckpointError) as err:
        verify_file(path, "0" * 64, "checkpoint of 'attn-only-2l'", "mi-course train attn-only-2l")
    msg = str(err.value)
    assert "git checkout -- mi_course/zoo/models/attn-only-2l/model.safetensors" in msg
    assert "corrupted" in msg and "sha256" in msg and "mi-course train attn-only-2l" in msg


def test_a_missing_file_outside_the_repository_says_reinstall(tmp_path):
    with pytest.raises(CheckpointError, match="missing.*reinstalling mi-course"):
        verify_file(tmp_path / "gone.safetensors", None, "tuned lens of 'x'")


def test_every_reader_of_zoo_files_uses_the_one_check():
    """No module hashes zoo files or opens safetensors checkpoints with a check of its own."""
    from pathlib import Path

    package = Path(zoo.__file__).resolve().parents[1]
    own_checks = [str(p.relative_to(package)) for p in package.rglob("*.py")
                  if "sha256_of(" in p.read_text() and p.name not in ("cards.py",)
                  and "verify_file" not in p.read_text() and "training" not in p.parts]
    assert own_checks == []


def test_zoo_verify_refuses_a_changed_checkpoint(tmp_path):
    src = zoo.card("attn-only-2l").checkpoint_path
    bad = tmp_path / "model.safetensors"
    shutil.copy(src, bad)
    with open(bad, "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02")
    with pytest.raises(CheckpointError, match="attn-only-2l.*corrupted"):
        zoo.verify("attn-only-2l", bad)

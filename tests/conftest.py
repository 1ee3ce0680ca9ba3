"""Shared test set-up: offline, CPU, quiet."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["MI_COURSE_PILOT"] = "0"  # a developer who pilots the course does not time the test suite

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def attn_model():
    from mi_course import zoo

    return zoo.load("attn-only-2l")


@pytest.fixture(scope="session")
def kb_tiny_model(tmp_path_factory):
    """A tiny random 3-layer model with MLPs and the knowledge base's word-level tokenizer (fast)."""
    import torch

    from mi_course import zoo
    from mi_course.data.knowledge_base import load_kb
    from mi_course.zoo.tokenizer_files import load_tokenizer_file

    kb = load_kb()
    path = tmp_path_factory.mktemp("kbtok") / "tokenizer.json"
    kb.tokenizer().save(str(path))
    torch.manual_seed(0)
    cfg = dict(n_layers=3, d_model=32, n_heads=2, d_head=16, d_mlp=64, n_ctx=64, d_vocab=len(kb.vocabulary),
               act_fn="gelu", normalization_type="LN", positional_embedding_type="standard")
    model = zoo.build(cfg, seed=0, tokenizer=load_tokenizer_file(path))
    model.eval()
    return model


@pytest.fixture(autouse=True)
def _grad_mode_is_restored():
    """A test, a module fixture or a figure helper that switches gradients off must not leak that
    into later tests, whose training loops would then fail: every test ends with them on."""
    import torch

    yield
    torch.set_grad_enabled(True)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small SAE/transcoder training crawls with 2 threads under load)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def prose(request):
    """The prose of the week named by the test module's ``WEEK`` (``tests/course_text.py``)."""
    import course_text

    return course_text.prose(request.module.WEEK)


@pytest.fixture(scope="module")
def deck(request):
    """The deck of the week named by the test module's ``WEEK``."""
    import course_text

    return course_text.deck(request.module.WEEK)

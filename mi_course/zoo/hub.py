"""Hub models (GPT-2 and friends) for users with internet. Offline, they fail at once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mi_course.errors import OfflineError

#: Course aliases for hub models, and the zoo model that stands in for each offline.
HUB_ALIASES: dict[str, tuple[str, str]] = {
    "gpt2-small": ("gpt2", "text-lm-v2"),
    "gpt2-medium": ("gpt2-medium", "text-lm-v2"),
    "attn-only-2l-hub": ("NeelNanda/Attn_Only_2L512W_C4_Code", "attn-only-2l"),
}

#: Raw hub ids whose offline stand-in we know.
STAND_INS: dict[str, str] = {
    "gpt2": "text-lm-v2",
    "NeelNanda/Attn_Only_2L512W_C4_Code": "attn-only-2l",
}


def is_hub_name(name: str) -> bool:
    """A raw hub id looks like ``owner/model`` (or is one of the aliases)."""
    return name in HUB_ALIASES or ("/" in name and not Path(name).exists())


def _hub_reachable(host: str = "huggingface.co", timeout: float = 1.5) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_hub_model(name: str, device: str = "cpu"):
    """Load a hub model through ``TransformerBridge.boot_transformers``.

    Fails within ~1.5 s with an :class:`OfflineError` naming the offline stand-in when
    ``HF_HUB_OFFLINE=1`` is set or the hub is unreachable (and the model is not cached). The
    message is short (about 140 characters for the aliases) and whole: print it, don't cut it.
    """
    hub_id, stand_in = HUB_ALIASES.get(name, (name, STAND_INS.get(name, "attn-only-2l")))
    offline_flag = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    what = f"'{name}'" + (f" (hub id '{hub_id}')" if hub_id != name else "")
    advice = f"{what} needs the internet the first time; offline, use zoo.load('{stand_in}') instead."
    if offline_flag or not _hub_reachable():
        # Only a model that is already in the local HF cache can load offline.
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(hub_id, "config.json")
        except Exception:  # pragma: no cover - hub library quirks
            cached = None
        if not isinstance(cached, str):
            why = "HF_HUB_OFFLINE=1 is set" if offline_flag else "the hub is unreachable"
            raise OfflineError(f"{advice} ({why}; not in the local cache.)")
        os.environ["HF_HUB_OFFLINE"] = "1"  # never hang on a network call
    from transformer_lens import TransformerBridge

    model = TransformerBridge.boot_transformers(hub_id, device=device)
    model.eval()
    return model

"""Build the dashboard statistics of a zoo SAE and measure automated-interpretation scores on them.

    python benchmarks/sae_dashboards.py            # print
    python benchmarks/sae_dashboards.py --write    # also ship them beside the SAE
    python benchmarks/sae_dashboards.py --sae text-lm-v2-L1-resid-topk --write   # another zoo SAE

For a model trained on the python corpus (``text-lm-v2``) the stream is the 512 held-out windows shipped
beside its checkpoint (the same on every machine); for ``text-lm`` (stdlib) every window of the held-out split.

Runs the SAE's model over every non-overlapping window of its corpus's held-out split, computes
:func:`mi_course.methods.feature_stats.compute_feature_stats` (seed 0) and writes
``zoo/saes/<name>/feature_stats.safetensors`` with its sha256 in the SAE card's
``extra["feature_stats"]``; then scores the rule-based explainer on 200 random alive latents beside
a random rule and a shuffled latent (:func:`mi_course.methods.autointerp.score_latents`) and writes
``measured_autointerp.json`` beside the card. ``tests/test_feature_dashboard.py`` re-measures a
subset. About 2-3 minutes on one CPU core.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

NAME = "text-lm-L1-resid-topk"
N_SCORED = 200
#: Latents whose dashboards week 12 shows, per SAE, chosen by reading its dashboards (a keyword, an
#: indentation, a bracket, a string, and one whose keyword explanation fails); after retraining an SAE, choose
#: new ones and update week 12's table (tests/test_week12_sae_section.py holds both).
SHOWN = {"text-lm-L1-resid-topk": (3, 13, 89, 8), "text-lm-v2-L1-resid-topk": (1013, 127, 1792, 221, 76)}


def stream_tokens(model_name: str) -> torch.Tensor:
    """``[n, n_ctx]`` held-out windows of the model's own corpus."""
    from mi_course import zoo
    from mi_course.zoo import text

    if text.corpus_of(model_name) == "python":
        sample = text.heldout_sample(model_name)
        return sample.long() if sample is not None else text.windows(model_name, "heldout", 512, 0)
    from mi_course.data import stdlib_corpus as sc
    from mi_course.training import textlm_recipe as v1

    tok = v1.load_raw_tokenizer(zoo.card(model_name).folder)
    ids = sc.tokenize_split(tok, "heldout")
    n_ctx = zoo.card(model_name).config["n_ctx"]
    return sc.heldout_windows(ids, ids.numel() // (n_ctx - 1) + 1, n_ctx)


def scored_latents(stats, n: int = N_SCORED, seed: int = 0) -> list[int]:
    alive = stats.alive()
    return sorted(alive[torch.randperm(len(alive), generator=torch.Generator().manual_seed(seed))[:n]].tolist())


def summarise(rows: list[dict]) -> dict:
    keys = ("detection", "fuzzing", "random_detection", "random_fuzzing", "shuffled_detection", "shuffled_fuzzing")
    return {k: round(statistics.mean(r[k] for r in rows), 4) for k in keys}


def main(write: bool = False, name: str = NAME) -> dict:
    from mi_course import zoo
    from mi_course.methods import autointerp as AI
    from mi_course.methods import feature_stats as FS
    from mi_course.zoo.cards import sha256_of
    from mi_course.zoo.tokenizer_files import tokenizer_for

    torch.set_num_threads(1)
    sae = zoo.load_sae(name)
    model = zoo.load(sae.model_name)
    tokens = stream_tokens(sae.model_name)
    t0 = time.time()
    stats = FS.compute_feature_stats(model, sae, tokens, seed=0, progress=True)
    seconds = time.time() - t0
    card = zoo.sae_card(name)
    path = card.folder / FS.STATS_FILE
    tok = tokenizer_for(zoo.card(sae.model_name))
    if write:
        FS.save_feature_stats(stats, path)
        stats = FS._read(path)  # score what is shipped (float16 activations)
    lat = scored_latents(stats)
    rows = AI.score_latents(stats, tok, lat)
    summary = summarise(rows)
    shown_ids = SHOWN.get(name, ())  # chosen by reading this SAE's dashboards
    shown = {str(i): r for i in shown_ids for r in AI.score_latents(stats, tok, [i])}
    out = {"latents_scored": len(rows), **summary,
           "dead_on_stream": int((stats.density == 0).sum()),
           "density_median_alive": round(float(stats.density[stats.density > 0].median()), 5),
           "shown": {i: {"explanation": r["explanation"], "detection": round(r["detection"], 4),
                         "fuzzing": round(r["fuzzing"], 4), "density": round(float(stats.density[int(i)]), 5)}
                     for i, r in shown.items()},
           "settings": f"{stats.meta['n_windows']} held-out windows of {stats.meta['n_ctx']} tokens "
                       f"({stats.meta['tokens']} tokens, position 0 left out); even windows explain, odd windows "
                       f"score; {N_SCORED} random alive latents (seed 0); 20 activating (spread over 4 equal-width "
                       "bands of activation, 0 to max) + 20 non-activating contexts per latent; fuzzing highlights tokens >= 0.5 x the "
                       "context's max"}
    print({k: v for k, v in out.items() if k != "shown"})
    for i, r in out["shown"].items():
        print(f"  latent {i}: {r}")
    if write:
        card = zoo.sae_card(name)
        card.extra = dict(card.extra or {})
        card.extra["feature_stats"] = {
            "file": FS.STATS_FILE, "sha256": sha256_of(path), "sae_sha256": card.sha256,
            "command": "python benchmarks/sae_dashboards.py --write" + ("" if name == NAME else f" --sae {name}"),
            "stream": out["settings"].split(";")[0], "cpu_time": f"{seconds:.0f} s (one core, shared)"}
        card.save(card.folder)
        card.write_measured("autointerp", out)
        print("wrote", path, "and", card.folder / "measured_autointerp.json")
    return out


if __name__ == "__main__":
    main(write="--write" in sys.argv, name=sys.argv[sys.argv.index("--sae") + 1] if "--sae" in sys.argv else NAME)

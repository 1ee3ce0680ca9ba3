"""Model cards: what each zoo model is, how it was trained, and what it measurably shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

MODELS_DIR = Path(__file__).parent / "models"


@dataclass
class ModelCard:
    """Everything a user should know about a zoo model, stored as ``models/<name>/card.json``."""

    name: str
    summary: str
    config: dict  # TransformerBridgeConfig keyword arguments (without device)
    training: dict  # data, recipe, seed, steps, command to retrain
    figures: dict  # measured figures: {"key": {"value": float, "description": str}}
    checkpoint: str = "model.safetensors"
    sha256: str = ""
    size_bytes: int = 0
    token_names: list[str] | None = None  # display names for synthetic vocabularies
    extra: dict = field(default_factory=dict)
    paper_figures: dict = field(default_factory=dict)  # the papers' claims, for comparison

    @property
    def folder(self) -> Path:
        return MODELS_DIR / self.name

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / self.checkpoint

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def save(self, folder: Path | None = None) -> Path:
        folder = Path(folder) if folder else self.folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "card.json"
        path.write_text(self.to_json())
        return path

    def measured(self, topic: str) -> dict:
        """Figures measured on this model for one topic (``measured_<topic>.json`` beside the card).

        Larger sweeps (a week's edit-scaling curve, a regression table) live in their own file, written
        by the benchmark that measures them (``write_measured``), so the card stays short and two
        topics never edit the same file. A test re-measures a subset of each.
        """
        path = self.folder / f"measured_{topic}.json"
        if not path.exists():
            have = sorted(p.stem.removeprefix("measured_") for p in self.folder.glob("measured_*.json"))
            raise FileNotFoundError(f"{self.name} has no measured figures for '{topic}' ({path.name}); "
                                    f"topics: {', '.join(have) or '(none)'}")
        return json.loads(path.read_text())

    def write_measured(self, topic: str, figures: dict) -> Path:
        """Write ``measured_<topic>.json`` beside the card (benchmarks call this with ``--write``)."""
        path = self.folder / f"measured_{topic}.json"
        path.write_text(json.dumps(figures, indent=1, sort_keys=False) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> "ModelCard":
        return cls(**json.loads(Path(path).read_text()))

    def render(self) -> str:
        """A readable text version of the card (used by ``mi-course models``)."""
        lines = [f"{self.name}: {self.summary}"]
        arch = ", ".join(f"{k}={v}" for k, v in self.config.items())
        lines.append(f"  architecture: {arch}")
        for key in ("data", "recipe", "seed", "steps", "command", "cpu_time"):
            if key in self.training:
                lines.append(f"  {key}: {self.training[key]}")
        lines.append("  measured figures:")
        for key, fig in self.figures.items():
            value = fig["value"] if isinstance(fig, dict) else fig
            desc = fig.get("description", "") if isinstance(fig, dict) else ""
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"    {key} = {shown}  ({desc})" if desc else f"    {key} = {shown}")
        if self.paper_figures:
            lines.append("  the papers say:")
            for key, text in self.paper_figures.items():
                lines.append(f"    {key}: {text}")
        size = f"{self.size_bytes / 1e6:.2f} MB" if self.size_bytes else "?"
        lines.append(f"  checkpoint: {self.checkpoint} ({size}), sha256 {self.sha256}")
        return "\n".join(lines)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def repo_relative(path: Path) -> tuple[str, bool]:
    """``(path as `git checkout` from the repository root spells it, whether this is a checkout)``.

    In a git checkout the zoo's files are ``mi_course/zoo/models/...`` from the repository root; in a
    plain install there is no repository, and the absolute path is returned."""
    path = Path(path).resolve()
    root = MODELS_DIR.resolve().parents[2]  # mi_course/zoo/models -> the repository root
    if (root / "pyproject.toml").exists() or (root / ".git").exists():
        try:
            return path.relative_to(root).as_posix(), True
        except ValueError:
            pass
    return str(path), False


def verify_file(path: Path, sha256: str | None, what: str, retrain: str | None = None) -> Path:
    """Check that a zoo file exists and matches its recorded ``sha256``; return ``path``.

    The one check every reader of zoo files uses (checkpoints, tokenizers, tuned lenses, training
    checkpoints). ``what`` names the file for the message ("checkpoint of 'attn-only-2l'");
    ``retrain`` is the command that rebuilds it. ``sha256=None`` only checks that the file exists.
    Raises :class:`~mi_course.errors.CheckpointError` naming the file as ``git checkout`` from the
    repository root finds it (or, in a plain install, telling to reinstall).
    """
    from mi_course.errors import CheckpointError

    path = Path(path)
    rel, checkout = repo_relative(path)
    restore = (f"Restore it with `git checkout -- {rel}` (run from the repository root)" if checkout
               else f"Restore it by reinstalling mi-course (`pip install --force-reinstall mi-course`)")
    restore += f", or rebuild it with `{retrain}`." if retrain else "."
    if not path.is_file():
        raise CheckpointError(f"The {what} is missing: {rel}. {restore}")
    if sha256:
        digest = sha256_of(path)
        if digest != sha256:
            raise CheckpointError(f"The {what} is corrupted or was changed: {rel} has sha256 {digest[:16]}..., "
                                  f"its card records {sha256[:16]}.... {restore}")
    return path

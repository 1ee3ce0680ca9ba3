"""Visualizers: ipywidgets + plain HTML (no JavaScript bundles), so they work offline and
keep notebooks small. Each widget exposes its controls as attributes, so tests can drive it."""

from mi_course.viz.attention import AttentionExplorer, attention_html, plot_attention
from mi_course.viz.patching import PatchingHeatmap, patching_html, plot_patching

__all__ = ["AttentionExplorer", "attention_html", "plot_attention", "PatchingHeatmap", "patching_html", "plot_patching"]

"""Figures for the slide decks, one module per week, each function returning a matplotlib Figure."""

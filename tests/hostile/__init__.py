"""Hostile submissions for the grading tests: a tiny course and generators of bad notebooks."""

"""Task data for the course's models (synthetic sequences, prompts, corpora)."""

"""Reference implementations of MI methods, one module per idea (find them by paper name)."""

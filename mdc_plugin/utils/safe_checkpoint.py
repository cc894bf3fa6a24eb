"""Safe checkpoint loading (filled in by the foundation work)."""

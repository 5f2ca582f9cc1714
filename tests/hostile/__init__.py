"""Hostile-input corpus: files built by generators, run through the CLI and the window's path."""

"""Benchmarks: accuracy through the got10k toolkit, and speed against the machine's limit."""

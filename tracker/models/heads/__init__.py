"""Heads; registered in :mod:`tracker.models.catalog`."""

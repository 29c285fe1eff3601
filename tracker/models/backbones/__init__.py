"""Backbones; registered in :mod:`tracker.models.catalog`."""

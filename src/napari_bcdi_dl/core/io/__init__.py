"""Readers and writers of BCDI data (see docs/formats.md). Public API: ``read``, ``write_*``."""

"""Popura's features: autopeering, meshname, router advertisements, the crawler.

Each is a self-contained package built exactly as a third party builds a feature: its
``__init__`` holds the feature object and schema (named by an entry point in the group
``ygg.features``), and it imports only ygg's public API (``ygg.interfaces`` and the helper
modules it names).  tests/test_architecture.py keeps that true.
"""

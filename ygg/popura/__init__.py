"""Popura's features: autopeering, meshname, router advertisements, the crawler.

Each is implemented here and plugged in by a small module in ``ygg.plugins`` (the plugin
scan imports those; these are imported only when a feature is enabled or its command runs).
"""

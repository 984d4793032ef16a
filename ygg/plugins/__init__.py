"""Features of the node, found with ``twisted.plugin.getPlugins(IFeature, ygg.plugins)``.

This package is open: any directory named ``ygg/plugins`` on ``sys.path`` that has no
``__init__.py`` of its own adds its modules here, so a third-party distribution ships a
feature by installing ``ygg/plugins/<its module>.py`` (see contrib/example-plugin).
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__: list[str] = []

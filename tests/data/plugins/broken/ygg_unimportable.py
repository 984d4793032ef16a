"""A feature module that fails to import."""

import ygg_no_such_module  # noqa: F401

"""ygg: a Yggdrasil v0.4 mesh network node on Twisted."""

__version__ = "0.1.0"

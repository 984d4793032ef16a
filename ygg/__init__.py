"""ygg: a Yggdrasil v0.4 mesh network node on Twisted."""

__version__ = "0.1.0"

#: Reported as build_name in getSelf and buildname in NodeInfo (yggdrasil reports "yggdrasil").
BUILD_NAME = "ygg"

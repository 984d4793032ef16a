"""ygg: a Yggdrasil v0.4 mesh network node on Twisted."""

from ygg import leanimport

__version__ = "0.1.0"

#: Reported as build_name in getSelf and buildname in NodeInfo (yggdrasil reports "yggdrasil").
BUILD_NAME = "ygg"

# Before anything imports Twisted's reactor: TLS and http.cookiejar only when used.
leanimport.install()

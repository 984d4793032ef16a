"""Twisted imported without the TLS and HTTP machinery a node does not use.

A node's memory is mostly the code it imports, and stock Twisted imports much that a node
never runs:

- pyOpenSSL, cryptography and service_identity, whenever they are installed, as soon as
  the reactor is imported (``twisted.internet.tcp`` for ``startTLS``, ``posixbase`` for
  ``listenSSL``, ``endpoints`` for the ``tls:`` strings): ~13 MiB.  A node uses TLS only
  for tls://, wss://, sockstls:// and quic:// links.
- ``http.cookiejar`` (from ``twisted.python.compat``), which brings urllib.request,
  http.client, email and hashlib: ~4 MiB that nothing in a node calls.
- asyncio itself (~1.8 MiB with ``concurrent.futures``): ``twisted.internet.defer`` imports
  it for ``Deferred.asFuture``/``fromFuture`` (only annotations and the loop or future
  passed in) and ``iscoroutine``.  A node runs no asyncio loop.
- The stdlib ``ssl`` module and libssl, from asyncio when something does import it: ~3 MiB
  for asyncio's own TLS, which no node uses.

:func:`install` (run when ``ygg`` is imported, so before Twisted is) makes
``http.cookiejar`` a lazy module, loaded on first use; runs those Twisted and asyncio
modules with pyOpenSSL or ``ssl`` hidden, so that they take the branches they have for a
system without them; and runs ``twisted.internet.defer`` with a stand-in for asyncio that
has the three names it imports (``iscoroutine`` answering as asyncio's does where defer
asks: it always asks ``inspect.isgenerator`` too).  When anything imports pyOpenSSL,
Twisted's TLS modules, ``ssl`` or asyncio later (a tls:// link, a quic:// link, a plugin),
the modules that left it out get back what they would have had: the reactor its
``listenSSL``, ``connectSSL`` and ``IReactorSSL``, ``twisted.internet.endpoints`` its
``wrapClientTLS`` and ``tls:``/``ssl:`` strings, asyncio its TLS, ``defer`` asyncio's own
names.

One thing stays off: ``startTLS`` on a TCP transport (``tcp``'s classes are built when it
is imported).  Wrap a protocol factory in ``TLSMemoryBIOFactory`` instead, as
``wrapClientTLS`` and ygg's links do.  When Twisted was imported before ``ygg``, or
pyOpenSSL and ``ssl`` were, :func:`install` saves what it still can and changes nothing
else.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from types import GenericAlias, ModuleType
from typing import Any

#: Module -> what is hidden from it while it executes.
_HIDE = {
    "twisted.internet.tcp": "OpenSSL",
    "twisted.internet.posixbase": "OpenSSL",
    "twisted.internet.endpoints": "OpenSSL",
    "asyncio.base_events": "ssl",
    "asyncio.selector_events": "ssl",
    "asyncio.sslproto": "ssl",
    "twisted.internet.defer": "asyncio",
}
#: Hidden module -> the imports after which what was left out can be given back: the
#: first to finish while none of the others is half-way gives it back (they import each
#: other; service_identity imports pyOpenSSL and Twisted's TLS imports service_identity).
_WATCH = {
    "OpenSSL": (
        "OpenSSL",
        "service_identity",
        "twisted.internet._sslverify",
        "twisted.internet.ssl",
        "twisted.internet._newtls",
        "twisted.protocols.tls",
        "twisted.protocols._sni",
    ),
    "ssl": ("ssl",),
    "asyncio": ("asyncio",),
}
_WATCHED = {name: hidden for hidden, names in _WATCH.items() for name in names}

#: The names ``twisted.internet.endpoints`` binds when pyOpenSSL imports.
_ENDPOINT_NAMES = {
    "twisted.internet.ssl": (
        "Certificate",
        "CertificateOptions",
        "KeyPair",
        "PrivateCertificate",
        "optionsForClientTLS",
        "trustRootFromCertificates",
    ),
    "twisted.protocols._sni": ("SNIConnectionCreator", "autoReloadingDirectoryOfPEMs"),
}


def _initializing(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _give_tls_back() -> None:
    """Bind what Twisted's modules bind when pyOpenSSL imports, where they left it out."""
    from OpenSSL.SSL import Error
    from twisted.internet import interfaces
    from twisted.protocols import tls
    from zope.interface import classImplements

    posixbase = sys.modules.get("twisted.internet.posixbase")
    if posixbase is not None and posixbase.tls is None:
        from twisted.internet import ssl

        posixbase.tls, posixbase.ssl = tls, ssl
        classImplements(posixbase.PosixReactorBase, interfaces.IReactorSSL)
    endpoints = sys.modules.get("twisted.internet.endpoints")
    if endpoints is not None and endpoints.TLSMemoryBIOFactory is None:
        for source, names in _ENDPOINT_NAMES.items():
            module = importlib.import_module(source)
            for name in names:
                setattr(endpoints, name, getattr(module, name))
        endpoints.SSLError = Error
        endpoints._TLSServerEndpoint = sys.modules["twisted.protocols._sni"].TLSServerEndpoint
        endpoints.TLSMemoryBIOFactory = tls.TLSMemoryBIOFactory


def _give_ssl_back() -> None:
    """Bind ``ssl`` where asyncio's modules left it None (and what sslproto derives)."""
    import ssl

    for name in ("asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ssl", ssl) is None:
            module.ssl = ssl
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is not None and not hasattr(sslproto, "SSLAgainErrors"):
        sslproto.SSLAgainErrors = (ssl.SSLWantReadError, ssl.SSLSyscallError)


def _give_asyncio_back() -> None:
    """Bind asyncio's names where ``twisted.internet.defer`` has the stand-in's."""
    import asyncio

    defer = sys.modules.get("twisted.internet.defer")
    if defer is not None and getattr(defer.iscoroutine, "_stand_in", False):
        defer.AbstractEventLoop = asyncio.AbstractEventLoop
        defer.Future = asyncio.Future
        defer.iscoroutine = asyncio.iscoroutine


def _asyncio_stand_in() -> ModuleType:
    """What ``twisted.internet.defer`` imports from asyncio, without asyncio."""
    from collections.abc import Coroutine

    module = ModuleType("asyncio", "ygg.leanimport's stand-in (asyncio is not loaded)")

    class AbstractEventLoop:
        __class_getitem__ = classmethod(GenericAlias)

    class Future(AbstractEventLoop):
        pass

    def iscoroutine(obj: object) -> bool:
        # asyncio's also says True for generators (3.11), which defer checks separately.
        return isinstance(obj, Coroutine)

    iscoroutine._stand_in = True  # type: ignore[attr-defined]
    module.AbstractEventLoop = AbstractEventLoop  # type: ignore[attr-defined]
    module.Future = Future  # type: ignore[attr-defined]
    module.iscoroutine = iscoroutine  # type: ignore[attr-defined]
    return module


_GIVE_BACK: dict[str, Callable[[], None]] = {
    "OpenSSL": _give_tls_back,
    "ssl": _give_ssl_back,
    "asyncio": _give_asyncio_back,
}
#: Hidden modules that are replaced by a stand-in rather than hidden outright (None).
_STAND_IN: dict[str, Callable[[], ModuleType]] = {"asyncio": _asyncio_stand_in}


class _Finder:
    """Runs the modules of ``_HIDE`` with their module hidden, and gives it back after
    the first import of one of ``_WATCH``.  (A meta path finder needs only ``find_spec``;
    ``importlib.abc`` would cost 3 MiB.)"""

    def __init__(self) -> None:
        self.hiding: Counter[str] = Counter()  # hidden module -> nesting of its hiders
        self.left_out: set[str] = set()  # hidden modules whose importers did without
        self.finding: set[str] = set()

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> Any:
        if (name not in _HIDE and name not in _WATCHED) or name in self.finding:
            return None
        spec = None
        self.finding.add(name)  # a finder that asks the others again finds it without us
        try:
            for finder in list(sys.meta_path):
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        break
        finally:
            self.finding.discard(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module
        if name in _HIDE:
            hidden = _HIDE[name]
            wrapped = lambda module: self._run_hiding(hidden, run, module)  # noqa: E731
        else:
            hidden = _WATCHED[name]
            wrapped = lambda module: self._run_then_give_back(hidden, run, module)  # noqa: E731
        # The loader is this spec's own instance: wrapping it touches no other import.
        spec.loader.exec_module = wrapped  # type: ignore[method-assign]
        return spec

    def _run_hiding(self, hidden: str, run: Any, module: ModuleType) -> None:
        if hidden in sys.modules and not self.hiding[hidden]:
            run(module)  # loaded already: nothing to save
            return
        self.hiding[hidden] += 1
        stand_in = _STAND_IN.get(hidden)
        sys.modules[hidden] = stand_in() if stand_in else None  # type: ignore[assignment]
        try:
            run(module)
        finally:
            self.hiding[hidden] -= 1
            if not self.hiding[hidden]:
                del sys.modules[hidden]
        self.left_out.add(hidden)

    def _run_then_give_back(self, hidden: str, run: Any, module: ModuleType) -> None:
        run(module)
        if hidden not in self.left_out:
            return
        if any(_initializing(n) for n in _WATCH[hidden] if n != module.__name__):
            return  # the outer one gives it back when it has finished
        try:
            _GIVE_BACK[hidden]()
        except (ImportError, AttributeError):
            return  # a module half-way through its import: the next watched one retries
        self.left_out.discard(hidden)


def _lazy(name: str) -> None:
    """``name`` as a module that executes on first attribute access."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    # Bound on the package too: ``from http import cookiejar`` then finds it without an
    # import, which would touch (and so load) the module.
    setattr(importlib.import_module(parent), child, module)


_finder: _Finder | None = None


def install() -> None:
    """Make ``http.cookiejar`` lazy and hide what is not yet imported (idempotent)."""
    global _finder
    if _finder is not None:
        return
    if "twisted.python.compat" not in sys.modules and "http.cookiejar" not in sys.modules:
        _lazy("http.cookiejar")
    _finder = _Finder()
    sys.meta_path.insert(0, _finder)


def left_out() -> set[str]:
    """The hidden modules whose importers did without them and have not had them back."""
    return set(_finder.left_out) if _finder is not None else set()

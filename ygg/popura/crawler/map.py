"""``ygg crawl --map FILE``: a picture of crawled networks, as .svg, .png or .html.

The input is a list of crawl results, one per network: getDHTCrawl's (v0.4) and
getTreeCrawl's (v0.5), which has the same shape per node with ``tree`` entries instead of
``dht``; the protocol version is each node's or its ``meta``'s ``version``
(``"0.4"``/``"0.5"``), and ``meta.crawler`` names the crawling node.  Each node of the picture is
labelled with its NodeInfo ``name`` (else the shortest prefix of its key, at least 8 hex
digits, that no other unnamed node shares), coloured by the protocol versions it was
found on (a node on both networks, as ygg itself is, has a colour of its own), hollow
when it never answered, and the crawling node is ringed.  Edges are peerings (each
node's ``peers``); DHT and tree entries are not drawn, as they are no links.

Reading the results (``crawl_map``) needs nothing but the standard library.  The layout
is networkx's ForceAtlas2 and the drawing matplotlib's, both optional (the ``map``
extra); ``require_libraries`` says which to install.  The .html file is self-contained:
the SVG inline, a little script to pan (drag) and zoom (wheel, +/-, 0 to reset), and
each node's key, version and state as its tooltip.  Nothing is fetched from anywhere.
"""

from __future__ import annotations

import html
import io
import json
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = (".svg", ".png", ".html")
EXTRA = "pip install 'ygg[map]'"

#: Colours by protocol version (Okabe–Ito, safe for colour-blind readers).
COLOURS = {"0.4": "#0072b2", "0.5": "#e69f00", "0.4+0.5": "#009e73"}
OTHER_COLOUR = "#999999"
CRAWLER_COLOUR = "#d55e00"
EDGE_COLOUR = "#9a9a9a"

#: Shortest key prefix shown for a node without a NodeInfo name.
SHORT_KEY = 8
#: Longest NodeInfo name shown (longer ones are cut, with an ellipsis).
LONGEST_NAME = 28
PNG_DPI = 100
LAYOUT_SEED = 1


class MapError(Exception):
    """The input is not a crawl, the file type is not one we draw, or a library is missing."""


# -- the crawl, as nodes and peerings ------------------------------------------------------


@dataclass
class MapNode:
    key: str
    name: str | None = None
    versions: set[str] = field(default_factory=set)
    found: bool = False
    crawler: bool = False
    label: str = ""

    @property
    def version(self) -> str:
        """The versions it was found on: "0.4", "0.5", "0.4+0.5", or "?" for none."""
        return "+".join(sorted(self.versions)) or "?"


@dataclass
class CrawlMap:
    nodes: dict[str, MapNode]
    #: Peerings, each once, as (smaller key, larger key).
    edges: set[tuple[str, str]]

    def versions(self) -> dict[str, int]:
        """Nodes per version group, in a stable order."""
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            counts[node.version] = counts.get(node.version, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (kv[0] == "?", kv[0])))

    @property
    def crawler(self) -> MapNode | None:
        return next((n for n in self.nodes.values() if n.crawler), None)


def _crawl_object(result: Any) -> tuple[Mapping[str, Any], str]:
    """The object holding ``topology`` in a result and the name it was under: a
    getDHTCrawl response (``{"dht_crawl": {...}}``), an admin reply around one
    (``{"response": ...}``) or the object itself."""
    if isinstance(result, Mapping):
        if "topology" in result:
            return result, ""
        if isinstance(result.get("response"), Mapping) and "status" in result:
            return _crawl_object(result["response"])
        inner = [(k, v) for k, v in result.items() if isinstance(v, Mapping) and "topology" in v]
        if len(inner) == 1:
            return inner[0][1], inner[0][0]
    raise MapError("not a crawl result (no topology)")


def _version(value: Any) -> str | None:
    """A version as a crawl gives it ("0.5", "v0.5", 0.5); None for anything else."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value).strip().lower().removeprefix("v")
        if 0 < len(text) <= 16 and text.isprintable():
            return text
    return None


_HEX = frozenset("0123456789abcdef")


def _key(value: Any) -> str | None:
    """A key as a crawl lists it (its hex text, or an object with a ``key``); None for
    anything that is not hex."""
    if isinstance(value, Mapping):
        value = value.get("key")
    if isinstance(value, str):
        text = value.strip().lower()
        if 0 < len(text) <= 64 and _HEX.issuperset(text):
            return text
    return None


def clean_name(info: Any) -> str | None:
    """A NodeInfo's ``name`` fit for a label: printable, one line, not too long."""
    if not isinstance(info, Mapping) or not isinstance(info.get("name"), str):
        return None
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in info["name"])
    text = " ".join(text.split())
    if len(text) > LONGEST_NAME:
        text = text[: LONGEST_NAME - 1].rstrip() + "…"
    return text or None


def _entries(topology: Any) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(key, entry) of a topology: a mapping of keys, or a list of entries with ``key``."""
    if isinstance(topology, Mapping):
        items: Iterable[tuple[Any, Any]] = topology.items()
    elif isinstance(topology, list):
        items = (
            (entry.get("key") if isinstance(entry, Mapping) else None, entry) for entry in topology
        )
    else:
        raise MapError("not a crawl result (its topology is neither an object nor a list)")
    for raw_key, entry in items:
        key = _key(raw_key)
        if key is not None:
            yield key, entry if isinstance(entry, Mapping) else {}


def crawl_map(results: Sequence[Any], crawler: str | None = None) -> CrawlMap:
    """The nodes and peerings of crawl results, one per network (see the module's text).

    A network's version is each entry's ``version``, else its ``meta.version``, else
    "0.4" for getDHTCrawl's ``dht_crawl`` (whose older replies name none).  A missing
    ``found`` means the node answered if it listed anything; missing lists are empty.
    The crawling node is ``crawler``, else the first ``meta.crawler`` of the results.
    """
    nodes: dict[str, MapNode] = {}
    edges: set[tuple[str, str]] = set()

    def node(key: str) -> MapNode:
        if key not in nodes:
            nodes[key] = MapNode(key)
        return nodes[key]

    taken = 0
    for result in _flatten(results):
        taken += 1
        crawl, name = _crawl_object(result)
        meta = crawl.get("meta") if isinstance(crawl.get("meta"), Mapping) else {}
        crawler = crawler or _key(meta.get("crawler"))
        network_version = _version(meta.get("version")) or ("0.4" if name == "dht_crawl" else None)
        infos = crawl.get("nodeinfo") if isinstance(crawl.get("nodeinfo"), Mapping) else {}
        infos = {_key(k): v for k, v in infos.items()}
        for key, entry in _entries(crawl.get("topology")):
            this = node(key)
            version = _version(entry.get("version")) or network_version
            if version:
                this.versions.add(version)
            peers = entry.get("peers") if isinstance(entry.get("peers"), list) else []
            this.found |= _answered(entry, peers)
            this.name = this.name or clean_name(entry.get("nodeinfo") or infos.get(key))
            for peer in peers:
                other = _key(peer)
                if other is None or other == key:
                    continue
                if version:
                    node(other).versions.add(version)  # a peer of a node of this network
                edges.add((min(key, other), max(key, other)))
    if not taken:
        raise MapError("no crawl result")
    me = _key(crawler)
    if me in nodes:
        nodes[me].crawler = True
    _label(nodes)
    return CrawlMap(nodes, edges)


def _answered(entry: Mapping[str, Any], peers: list[Any]) -> bool:
    found = entry.get("found")
    if found is None:  # not said: it answered if it told us anything
        return bool(peers or entry.get("coords"))
    if isinstance(found, str):
        return found.strip().lower() == "true"
    return bool(found)


def check_results(data: Any) -> None:
    """MapError unless ``data`` (a saved file's) is a crawl result or a list of them."""
    results = list(_flatten([data]))
    if not results:
        raise MapError("no crawl result")
    for result in results:
        _crawl_object(result)


def _flatten(results: Iterable[Any]) -> Iterable[Any]:
    """The results, a saved file's list of them taken apart."""
    for result in results:
        if isinstance(result, list):
            yield from _flatten(result)
        else:
            yield result


def _label(nodes: Mapping[str, MapNode]) -> None:
    """Names where NodeInfo gave one; else the shortest key prefix (at least SHORT_KEY
    digits) that no other unnamed node shares."""
    unnamed = sorted(k for k, n in nodes.items() if not n.name)
    for i, key in enumerate(unnamed):
        length = SHORT_KEY
        for other in unnamed[max(0, i - 1) : i + 2]:
            if other != key:
                common = len(_common_prefix(key, other))
                length = max(length, common + 1)
        nodes[key].label = key[:length]
    for n in nodes.values():
        if n.name:
            n.label = n.name


def _common_prefix(a: str, b: str) -> str:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[:i]


# -- the drawing ----------------------------------------------------------------------------


def check_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise MapError(f"cannot draw {path}: the map's file name must end in .svg, .png or .html")
    return suffix


def require_libraries() -> tuple[Any, Any]:
    """networkx and matplotlib (with its file-only Agg backend), or one line saying what
    to install."""
    missing = []
    try:
        import networkx
    except ImportError:
        missing.append("networkx")
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        missing.append("matplotlib")
    if missing:
        raise MapError(f"drawing a map needs {' and '.join(missing)}: {EXTRA}")
    if not hasattr(networkx, "forceatlas2_layout"):
        raise MapError(f"drawing a map needs networkx 3.4 or later: {EXTRA}")
    return networkx, matplotlib


def layout(cmap: CrawlMap, seed: int = LAYOUT_SEED) -> dict[str, tuple[float, float]]:
    """Positions in [-1, 1]²: ForceAtlas2 for the nodes with more than one peer, then
    each node with a single peer on a fan around that peer, away from its other links.

    Such leaves are most nodes of a real network, and ForceAtlas2 costs time and memory
    in the square of the nodes it places (networkx's is dense): placing them afterwards
    keeps a map of a few thousand nodes to seconds.
    """
    nx, _ = require_libraries()
    graph = nx.Graph()
    graph.add_nodes_from(sorted(cmap.nodes))
    graph.add_edges_from(sorted(cmap.edges))
    leaves: dict[str, list[str]] = {}
    for key in sorted(graph):
        if graph.degree(key) == 1:
            (peer,) = graph[key]
            if graph.degree(peer) > 1:
                leaves.setdefault(peer, []).append(key)
    folded = {leaf for fan in leaves.values() for leaf in fan}
    # A graph of its own, built in sorted order: a subgraph view may iterate a set, and
    # the layout would then change with the interpreter's hash seed.
    core = nx.Graph()
    core.add_nodes_from(k for k in sorted(graph) if k not in folded)
    core.add_edges_from(e for e in sorted(cmap.edges) if not folded.intersection(e))
    if len(core) > 1:
        iterations = 300 if len(core) <= 1000 else 100
        # More repulsion than the default 2: fewer nodes on top of each other, whatever
        # the seed.
        placed = nx.forceatlas2_layout(core, seed=seed, max_iter=iterations, scaling_ratio=5.0)
        pos = {key: (float(x), float(y)) for key, (x, y) in placed.items()}
    else:
        pos = {key: (0.0, 0.0) for key in core}
    lengths = sorted(math.dist(pos[a], pos[b]) for a, b in core.edges())
    reach = 0.6 * lengths[len(lengths) // 2] if lengths else 1.0
    for hub, fan in leaves.items():
        _fan_out(pos, hub, fan, list(core[hub]), reach)
    pos = nx.rescale_layout_dict(pos, scale=1.0)
    return {key: (float(x), float(y)) for key, (x, y) in pos.items()}


def _fan_out(
    pos: dict[str, tuple[float, float]],
    hub: str,
    fan: list[str],
    links: list[str],
    reach: float,
) -> None:
    """Place ``fan`` (leaves of ``hub``) around it, centred away from its ``links``."""
    hx, hy = pos[hub]
    if links:
        ax = sum(pos[p][0] for p in links) / len(links)
        ay = sum(pos[p][1] for p in links) / len(links)
        centre = math.atan2(hy - ay, hx - ax)
    else:
        centre = math.pi / 2
    count = len(fan)
    span = min(2 * math.pi * (1 - 1 / (count + 1)), 0.55 * count) if count > 1 else 0.0
    for i, leaf in enumerate(fan):
        angle = centre - span / 2 + (span * i / (count - 1) if count > 1 else 0.0)
        radius = reach * (1.0 if count <= 12 or i % 2 == 0 else 1.45)
        pos[leaf] = (hx + radius * math.cos(angle), hy + radius * math.sin(angle))


def _colour(version: str) -> str:
    return COLOURS.get(version, OTHER_COLOUR)


def _version_text(version: str) -> str:
    if version == "?":
        return "version unknown"
    return " and ".join(f"v{v}" for v in version.split("+"))


def _title(cmap: CrawlMap, title: str | None) -> str:
    groups = [f"{count} on {_version_text(v)}" for v, count in cmap.versions().items()]
    silent = sum(not n.found for n in cmap.nodes.values())
    if silent:
        groups.append(f"{silent} did not answer")
    counts = f" ({', '.join(groups)})" if groups else ""
    text = f"{len(cmap.nodes)} nodes{counts}, {len(cmap.edges)} peerings"
    return f"{title}: {text}" if title else text


def render(cmap: CrawlMap, fmt: str, title: str | None = None) -> bytes:
    """The picture as ``fmt`` ("svg" or "png") bytes."""
    _, matplotlib = require_libraries()
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    pos = layout(cmap)
    xs = [x for x, _ in pos.values()] or [0.0]
    ys = [y for _, y in pos.values()] or [0.0]
    width, height = max(max(xs) - min(xs), 0.2), max(max(ys) - min(ys), 0.2)
    margin = 0.06 * max(width, height)
    # The figure takes the layout's shape; its longer side grows with the square root of
    # the node count (~11 inches for 50 nodes), so labels keep their size on big maps.
    side = min(60.0, max(8.0, 1.1 * math.sqrt(len(pos)) + 3.0))
    scale = side / max(width, height)
    header = 0.7  # inches above the map for the title and the legend
    fig_w = max(side * 0.6, width * scale) + 0.2
    fig_h = height * scale + header + 0.2
    rc = {
        "svg.fonttype": "none",  # labels stay text: searchable, and the page can find them
        "svg.hashsalt": "ygg-crawl-map",  # the same crawl gives the same file
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],  # matplotlib's own font, so no lookups
    }
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(fig_w, fig_h))
        ax = fig.add_axes((0.1 / fig_w, 0.1 / fig_h, 1 - 0.2 / fig_w, 1 - (header + 0.2) / fig_h))
        ax.set_axis_off()
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlim(min(xs) - margin, max(xs) + margin)
        ax.set_ylim(min(ys) - margin, max(ys) + margin)
        fig.text(0.5, 1 - 0.22 / fig_h, _title(cmap, title), ha="center", va="center", fontsize=10)
        if cmap.edges:
            lines = LineCollection(
                [(pos[a], pos[b]) for a, b in sorted(cmap.edges)],
                colors=EDGE_COLOUR,
                linewidths=0.6,
                zorder=1,
            )
            lines.set_gid("peerings")
            ax.add_collection(lines)
        groups: dict[tuple[str, bool], list[MapNode]] = {}
        for node in sorted(cmap.nodes.values(), key=lambda m: m.key):
            groups.setdefault((node.version, node.found), []).append(node)
        for (version, found), members in sorted(groups.items()):
            colour = _colour(version)
            dots = ax.scatter(
                [pos[m.key][0] for m in members],
                [pos[m.key][1] for m in members],
                s=36,
                c=colour if found else "white",
                edgecolors=colour,
                linewidths=1.2,
                zorder=3,
            )
            dots.set_gid(f"nodes-v{version}-{'found' if found else 'silent'}")
        me = cmap.crawler
        if me is not None:
            ring = ax.scatter(
                [pos[me.key][0]],
                [pos[me.key][1]],
                s=320,
                facecolors="none",
                edgecolors=CRAWLER_COLOUR,
                linewidths=2.5,
                zorder=4,
            )
            ring.set_gid("crawler")
        for node in sorted(cmap.nodes.values(), key=lambda m: m.key):
            label = ax.annotate(
                node.label,
                pos[node.key],
                xytext=(0, 9 if node.crawler else 5.5),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=6.5,
                fontweight="bold" if node.crawler else "normal",
                color="#222222",
                zorder=5,
                annotation_clip=False,
            )
            label.set_parse_math(False)  # a '$' in a NodeInfo name is just a dollar
            label.set_gid(f"node-{node.key}")
        handles = [
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                ms=7,
                color=_colour(v),
                label=_version_text(v),
            )
            for v in cmap.versions()
        ]
        if not all(n.found for n in cmap.nodes.values()):
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="",
                    marker="o",
                    ms=7,
                    mfc="white",
                    mec=OTHER_COLOUR,
                    label="did not answer",
                )
            )
        if me is not None:
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="",
                    marker="o",
                    ms=14,
                    mfc="none",
                    mec=CRAWLER_COLOUR,
                    mew=2.5,
                    label="crawling node",
                )
            )
        fig.legend(
            handles=handles,
            loc="center",
            bbox_to_anchor=(0.5, 1 - 0.5 / fig_h),
            ncol=len(handles),
            frameon=False,
            fontsize=8,
        )
        out = io.BytesIO()
        if fmt == "svg":
            fig.savefig(out, format="svg", metadata={"Date": None})
        else:
            fig.savefig(out, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return out.getvalue()


def _page(cmap: CrawlMap, svg: bytes, title: str | None) -> str:
    """A self-contained page: the SVG inline, a little script to pan and zoom."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
    nodes = {
        f"node-{n.key}": f"{n.label}\n{n.key}\n{_version_text(n.version)}"
        + (", did not answer" if not n.found else "")
        + (", the crawling node" if n.crawler else "")
        for n in cmap.nodes.values()
    }
    data = json.dumps(nodes, sort_keys=True, ensure_ascii=True).replace("<", "\\u003c")
    heading = html.escape(_title(cmap, title))
    return _PAGE.format(title=heading, svg=text, data=data, script=_SCRIPT)


def write_map(
    results: Sequence[Any],
    path: str | Path,
    *,
    crawler: str | None = None,
    title: str | None = None,
) -> CrawlMap:
    """Draw ``results`` (one crawl per network) into ``path`` (.svg, .png or .html)."""
    suffix = check_format(path)
    cmap = crawl_map(results, crawler)
    if suffix == ".png":
        data = render(cmap, "png", title)
    elif suffix == ".svg":
        data = render(cmap, "svg", title)
    else:
        data = _page(cmap, render(cmap, "svg", title), title).encode("utf-8")
    Path(path).write_bytes(data)
    return cmap


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
html, body {{ margin: 0; height: 100%; font: 14px sans-serif; background: #fff; }}
body {{ display: flex; flex-direction: column; }}
header {{ flex: none; padding: 6px 10px; border-bottom: 1px solid #ddd; color: #444; }}
#map {{ flex: 1; min-height: 0; cursor: grab; touch-action: none; overflow: hidden; }}
#map svg {{ width: 100%; height: 100%; display: block; }}
#map.dragging {{ cursor: grabbing; }}
</style>
</head>
<body>
<header><strong>ygg crawl</strong> &middot; <span id="status"></span> &middot; drag to pan,
wheel or +/&minus; to zoom, 0 to reset; a label's tooltip has the key</header>
<div id="map">
{svg}
</div>
<script type="application/json" id="nodes">{data}</script>
<script>
{script}
</script>
</body>
</html>
"""

_SCRIPT = """"use strict";
(function () {
  const box = document.getElementById("map");
  const svg = box.querySelector("svg");
  const info = JSON.parse(document.getElementById("nodes").textContent);
  const SVGNS = "http://www.w3.org/2000/svg";
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const home = svg.viewBox.baseVal;
  const start = [home.x, home.y, home.width, home.height];
  let view = start.slice();
  function show() { svg.setAttribute("viewBox", view.join(" ")); }
  function toSvg(clientX, clientY) {
    const p = svg.createSVGPoint();
    p.x = clientX; p.y = clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }
  function zoom(factor, cx, cy) {
    const w = Math.min(Math.max(view[2] * factor, start[2] / 50), start[2] * 4);
    const f = w / view[2];
    view = [cx - (cx - view[0]) * f, cy - (cy - view[1]) * f, view[2] * f, view[3] * f];
    show();
  }
  box.addEventListener("wheel", function (e) {
    e.preventDefault();
    const p = toSvg(e.clientX, e.clientY);
    zoom(Math.exp(e.deltaY * 0.0015), p.x, p.y);
  }, { passive: false });
  let drag = null;
  box.addEventListener("pointerdown", function (e) {
    drag = toSvg(e.clientX, e.clientY);
    box.setPointerCapture(e.pointerId);
    box.classList.add("dragging");
  });
  box.addEventListener("pointermove", function (e) {
    if (!drag) return;
    const p = toSvg(e.clientX, e.clientY);
    view[0] -= p.x - drag.x; view[1] -= p.y - drag.y;
    show();
  });
  function release() { drag = null; box.classList.remove("dragging"); }
  box.addEventListener("pointerup", release);
  box.addEventListener("pointercancel", release);
  document.addEventListener("keydown", function (e) {
    const cx = view[0] + view[2] / 2, cy = view[1] + view[3] / 2;
    if (e.key === "+" || e.key === "=") zoom(1 / 1.25, cx, cy);
    else if (e.key === "-") zoom(1.25, cx, cy);
    else if (e.key === "0") { view = start.slice(); show(); }
  });
  let count = 0;
  for (const id of Object.keys(info)) {
    const g = document.getElementById(id);
    if (!g) continue;
    const title = document.createElementNS(SVGNS, "title");
    title.textContent = info[id];
    g.insertBefore(title, g.firstChild);
    count += 1;
  }
  document.getElementById("status").textContent = count + " nodes shown";
  document.body.dataset.nodes = String(count);
})();
"""

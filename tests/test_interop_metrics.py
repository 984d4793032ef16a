"""A real Prometheus scrapes ygg peered with the real Go node (Debian's yggdrasil 0.4.7).

Debian's ``prometheus`` runs on 127.0.0.1 with a config written here (one job: our node,
scraped every second) and its own storage directory; its query API must show the byte
counters of the live link to the Go node growing while traffic flows.  Everything stays
on loopback; each process is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.parse
import urllib.request
from typing import Any

from tests.helpers import require_tool
from tests.nodes import wait_until
from tests.processes import Process
from tests.scrape import samples, value
from tests.test_interop_links import InteropCase

SERVING = re.compile(r"serving Prometheus metrics on (http://\S+/metrics)")
#: Loopback only, and never through a proxy the environment may name.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A loopback TCP port free right now (Prometheus has no "port 0 and tell me")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, accept: str = "") -> str:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with HTTP.open(request, timeout=10) as response:
        return response.read().decode()


class Prometheus:
    """Debian's prometheus in a directory of ours, scraping ``target`` every second."""

    def __init__(self, binary: str, directory: str, target: str) -> None:
        self.port = free_port()
        os.makedirs(directory, exist_ok=True)
        config = f"{directory}/prometheus.yml"
        with open(config, "w") as f:
            f.write(
                "global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 1s\n"
                "scrape_configs:\n"
                "  - job_name: ygg\n"
                "    static_configs:\n"
                f"      - targets: ['{target}']\n"
            )
        self.process = Process(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            cwd=directory,
            checkout=False,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        wait_until(lambda: get(f"{self.base}/-/ready"), 60, "prometheus to be ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to now."""
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        reply = json.loads(get(url))
        assert reply["status"] == "success", reply
        return reply["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> int:
        return self.process.stop()


class ScrapeTests(InteropCase):
    def test_prometheus_sees_the_go_links_bytes_grow(self) -> None:
        binary = require_tool("prometheus")
        go = self.go("go", listen=["tcp://127.0.0.1:0"], nodeinfo={"name": "gonode"})
        ours = self.ours(
            "ours",
            peers=[go.listen_uri("tcp")],
            extra={"Metrics": {"Enable": True, "Listen": "127.0.0.1:0"}},
        )
        ours.wait_peer(go.key)
        url = SERVING.search(ours.log).group(1)  # type: ignore[union-attr]
        target = urllib.parse.urlsplit(url).netloc

        # The page as a scraper reads it, in both formats, parses with prometheus_client.
        for accept, openmetrics in (("", False), ("application/openmetrics-text", True)):
            found = samples(get(url, accept), openmetrics)
            labels = {
                "key": go.key,
                "remote": go.listen_uri("tcp"),
                "version": "0.4",
                "inbound": "false",
            }
            self.assertGreater(value(found, "ygg_peer_received_bytes_total", **labels), 0)
            self.assertGreater(value(found, "ygg_peer_received_packets_total", **labels), 0)

        prometheus = Prometheus(binary, f"{self.dir}/prometheus", target)
        self.addCleanup(prometheus.stop)
        wait_until(lambda: prometheus.scalar('up{job="ygg"}') == 1, 60, "prometheus to scrape ygg")
        selector = f'ygg_peer_received_bytes_total{{job="ygg",key="{go.key}",version="0.4"}}'
        first = wait_until(lambda: prometheus.scalar(selector), 30, "the peer's byte counter")

        def grown() -> float | None:
            # Traffic over the link: our NodeInfo question to the Go node, and its answer.
            ours.ctl("getNodeInfo", f"key={go.key}")
            now = prometheus.scalar(selector)
            return now if now is not None and now > first else None

        later = wait_until(grown, 30, f"the byte counter to grow past {first}", interval=1.0)
        self.assertGreater(later, first)
        sent = prometheus.scalar(
            f'ygg_peer_sent_bytes_total{{job="ygg",key="{go.key}",version="0.4"}}'
        )
        self.assertGreater(sent, 0)
        # The rest of the page arrives alongside (up == 1: Prometheus took every family).
        for promql, what in (
            ('ygg_sessions{job="ygg",network="0.4"} == 1', "the session to the Go node"),
            (
                'ygg_admin_requests_total{job="ygg",method="getnodeinfo",door="json",'
                'result="ok"} >= 1',
                "the admin requests",
            ),
        ):
            wait_until(lambda promql=promql: prometheus.query(promql), 30, what)
        self.assertEqual(prometheus.stop(), 0)

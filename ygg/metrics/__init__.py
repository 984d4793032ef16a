"""The node's Prometheus endpoint (``Metrics { Enable, Listen }``, docs/metrics.md).

Imported only when the section enables it: prometheus_client and twisted.web cost memory
a node without metrics does not pay.  ``collector`` reads the node's own counters at
scrape time (nothing is counted twice, nothing is added per packet); ``service`` serves
them, with the features' collectors, on the configured address.
"""

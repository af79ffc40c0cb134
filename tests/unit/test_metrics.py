"""Metrics: the log sink's counters, the sums across workers, the Prometheus text.

In process (ProxyHarness): routed exchanges and the answers made before one (a 404)
are both counted; a tick hands the deltas on and zeroes them; totals only grow.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.metrics.counters import ROW, Deltas, RequestMetrics
from portico.metrics.render import AppRow, Scrape, UpstreamRow, render_metrics
from portico.metrics.totals import Totals
from portico.proxy.accesslog import Answered
from portico.proxy.route_policy import compile_policies
from tests.support.harness import ProxyHarness


def config(url: str, metrics: bool = True) -> str:
    return (f'[server]\nlisten = ["http://127.0.0.1:8080"]\naccess_log = "off"\n'
            f'[metrics]\nenabled = {str(metrics).lower()}\n'
            f'[[route]]\npath = "/api"\nupstream = "{url}"\n')


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_exchanges_and_answers_before_one_are_counted_and_flushed_once() -> None:
    harness, _ = ProxyHarness.with_upstream(config)
    sent: list[Deltas] = []
    gw = harness.gateway
    labels = [route.log_label.decode() for route in gw.routes.routes]
    gw.metrics = RequestMetrics(labels, sent.append)
    plan = serving_plan(parse(config("http://127.0.0.1:9/"), "t"), Path.cwd(), Path.cwd())
    gw.policies = compile_policies(plan, gw)
    try:
        for _ in range(3):
            assert harness.exchange(b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n").status == 200
        assert harness.exchange(b"DELETE /nowhere HTTP/1.1\r\nHost: a\r\n\r\n").status == 404
        # refused by the connection itself, before any request: counted all the same
        assert harness.exchange(b"BREW /api HTTP/1.1\r\nHost: a\r\n\r\n").status == 400
        gw.metrics.flush()
        gw.metrics.flush()  # nothing moved since: an empty delta (the gauges ride along)
    finally:
        harness.close()
    assert len(sent) == 2 and sent[1] == {}
    totals = Totals()
    totals.add(sent[0])
    text = render_metrics(Scrape(totals))
    found = samples(text)
    assert found[("portico_requests_total", (("code", "2xx"), ("method", "GET"),
                                             ("route", "/api")))] == 3
    assert found[("portico_requests_total", (("code", "4xx"), ("method", "DELETE"),
                                             ("route", "(none)")))] == 1
    assert found[("portico_requests_total", (("code", "4xx"), ("method", "OTHER"),
                                             ("route", "(none)")))] == 1
    assert found[("portico_request_duration_seconds_count", (("route", "/api"),))] == 3
    assert found[("portico_response_bytes_total", (("route", "/api"),))] > 0


def test_the_row_layout_matches_its_lists() -> None:
    from portico.metrics import counters

    assert len(counters.METHODS) * len(counters.CLASSES) == counters.BUCKETS_AT
    assert counters.BUCKETS_AT + len(counters.BUCKETS) + 1 == counters.DURATION_US_AT


def test_off_costs_no_sink() -> None:
    harness, _ = ProxyHarness.with_upstream(lambda url: config(url, metrics=False))
    try:
        assert harness.gateway.metrics is None
        assert all(len(policy.log) == 0 for policy in harness.gateway.policies.routes)
    finally:
        harness.close()


def _Done(index: int, method: bytes, status: int) -> Answered:
    return Answered((b"", method, b"", b"1.1", status, 10, b"", b"", b"", b"", b""), index)


def test_totals_never_decrease_when_a_worker_starts_over() -> None:
    totals = Totals()
    for worker_run in range(3):  # each run of a worker counts from zero again
        sent: list[Deltas] = []
        sink = RequestMetrics(["/"], sent.append)
        for _ in range(5):
            sink.record_exchange(_Done(0, b"GET", 200), 0.001)
        sink.flush()
        totals.add(sent[0])
        assert totals.rows["/"][1] == 5 * (worker_run + 1)  # GET x 2xx
    totals.add({"/": [1, 2]})  # another layout: ignored, never mixed in
    assert len(totals.rows["/"]) == ROW


def test_labels_stay_bounded_and_promtool_is_silent() -> None:
    totals = Totals()
    sent: list[Deltas] = []
    sink = RequestMetrics(["/a", "/b"], sent.append)
    for method in (b"GET", b"POST", b"PROPFIND", b"X" * 100):
        for status in (101, 204, 301, 404, 502, 0):
            sink.record_exchange(_Done(1, method, status), 12.0)
    sink.flush()
    totals.add(sent[0])
    totals.reloaded(False, 1.0)
    scrape = Scrape(totals, connections=3, in_flight=1, workers=2,
                    apps=[AppRow("web", "web#1", True, 2, 1.5, 4096)],
                    upstreams=[UpstreamRow("/a", "http://127.0.0.1:1", False, 3)],
                    certificates=[("a.test", 1.9e9)])
    text = render_metrics(scrape)
    methods = {labels[1][1] for (name, labels) in samples(text)
               if name == "portico_requests_total"}
    assert methods == {"GET", "POST", "OTHER"}
    assert b'portico_app_resident_memory_bytes{app="web",instance="web#1"} 4096.0' in text
    assert b"portico_config_last_reload_successful 0.0" in text
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian prometheus) is not installed: make metrics-deps")
    checked = subprocess.run(["promtool", "check", "metrics"], input=text,
                             capture_output=True, timeout=30)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")


def test_the_metrics_guide_example_compiles_with_metrics_on() -> None:
    from portico.config.compile import compile_plan

    guide = (Path(__file__).parents[2] / "docs" / "guide" / "metrics.md").read_text()
    text = guide.split("```toml\n")[1].split("```", 1)[0]
    plan = compile_plan(parse(text, "metrics.md"), Path.cwd(), Path.cwd(), None, {})
    assert plan.serving.metrics.enabled and plan.serving.metrics.listen == "127.0.0.1:9464"
    assert plan.workers == 2

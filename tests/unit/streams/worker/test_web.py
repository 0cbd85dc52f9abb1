"""The worker's HTTP surface (streams/worker/web.py): which requests its guard
lets through (refusal), and the /metrics format each Accept header gets."""

import pytest
from prometheus_client import CollectorRegistry, Histogram

from fleetpulse.settings import Secret, load_settings
from fleetpulse.streams.worker.web import Policy, exposition, refusal

LOCAL = Policy.from_settings(load_settings(environ={}))
TOKEN = Policy.from_settings(load_settings(environ={}, http_token=Secret("s3cret")))
WILD = Policy.from_settings(load_settings(environ={}, http_host="0.0.0.0", http_token=Secret("s3cret")))
JSON = {"Host": "127.0.0.1:6066", "Content-Type": "application/json"}


@pytest.mark.parametrize("policy, method, path, headers", [
    (LOCAL, "GET", "/metrics", {"Host": "127.0.0.1:6066"}),
    (LOCAL, "GET", "/health", {"Host": "localhost:6066"}),
    (LOCAL, "GET", "/metrics", {"Host": "[::1]:6066"}),
    (LOCAL, "POST", "/query", JSON),
    (LOCAL, "POST", "/query", {**JSON, "Content-Type": "application/json; charset=utf-8"}),
    (LOCAL, "POST", "/silences", {**JSON, "Origin": "http://127.0.0.1:6066"}),
    (LOCAL, "POST", "/query", {**JSON, "Sec-Fetch-Site": "same-origin"}),
    (TOKEN, "POST", "/drift/baseline", {**JSON, "Authorization": "Bearer s3cret"}),
    (TOKEN, "POST", "/query", {**JSON, "Authorization": "bearer s3cret"}),
    (TOKEN, "GET", "/metrics", {"Host": "127.0.0.1:6066"}),
    (WILD, "POST", "/query", {**JSON, "Host": "10.1.2.3:6066", "Authorization": "Bearer s3cret"}),
    # The pages carry no data: open. Their data endpoints are GETs under /query's rules.
    (TOKEN, "GET", "/", {"Host": "127.0.0.1:6066"}),
    (TOKEN, "GET", "/d/fleet", {"Host": "127.0.0.1:6066"}),
    (TOKEN, "GET", "/static/app.js", {"Host": "127.0.0.1:6066", "Sec-Fetch-Site": "same-origin"}),
    (TOKEN, "GET", "/api/dashboards", {"Host": "127.0.0.1:6066"}),
    (LOCAL, "GET", "/api/panels/fleet_requests", {"Host": "127.0.0.1:6066"}),
    (TOKEN, "GET", "/api/panels/fleet_requests", {"Host": "127.0.0.1:6066", "Authorization": "Bearer s3cret"}),
    (TOKEN, "GET", "/api/variables/model", {"Host": "127.0.0.1:6066", "Authorization": "Bearer s3cret"}),
])
def test_let_through(policy, method, path, headers):
    assert refusal(policy, method, path, headers) is None


@pytest.mark.parametrize("policy, method, path, headers, status, why", [
    (LOCAL, "GET", "/index.php", {"Host": "127.0.0.1"}, 404, "no such endpoint"),
    (LOCAL, "GET", "/d/fleet/x", {"Host": "127.0.0.1"}, 404, "no such endpoint"),
    (LOCAL, "GET", "/static/../web.py", {"Host": "127.0.0.1"}, 404, "no such endpoint"),
    (LOCAL, "GET", "/api/panels/a/b", {"Host": "127.0.0.1"}, 404, "no such endpoint"),
    (TOKEN, "GET", "/api/panels/fleet_requests", {"Host": "127.0.0.1"}, 401, "bearer token is required"),
    (TOKEN, "GET", "/api/variables/model", {"Host": "127.0.0.1", "Authorization": "Bearer no"}, 401, "bearer"),
    (LOCAL, "POST", "/api/panels/fleet_requests", JSON, 405, "takes GET"),
    (LOCAL, "GET", "/api/panels/fleet_requests", {"Host": "evil.example:6066"}, 403, "not this worker's address"),
    (LOCAL, "GET", "/api/panels/fleet_requests", {"Host": "127.0.0.1", "Origin": "http://evil.example"}, 403,
     "cross-origin"),
    (LOCAL, "GET", "/api/panels/fleet_requests", {"Host": "127.0.0.1", "Sec-Fetch-Site": "cross-site"}, 403,
     "cross-site"),
    (LOCAL, "GET", "/table/x/y", {"Host": "127.0.0.1"}, 404, "no such endpoint"),
    (LOCAL, "GET", "/metrics", {}, 400, "Host header is missing"),
    (LOCAL, "GET", "/metrics", {"Host": "evil.example"}, 403, "not this worker's address"),
    (LOCAL, "GET", "/metrics", {"Host": "127.0.0.1.evil.example:6066"}, 403, "not this worker's address"),
    (LOCAL, "POST", "/query", {**JSON, "Origin": "http://evil.example"}, 403, "cross-origin"),
    (LOCAL, "POST", "/query", {**JSON, "Origin": "http://127.0.0.1:9999"}, 403, "cross-origin"),
    (LOCAL, "POST", "/query", {**JSON, "Origin": "null"}, 403, "cross-origin"),
    (LOCAL, "GET", "/metrics", {"Host": "127.0.0.1", "Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
    (LOCAL, "GET", "/query", {"Host": "127.0.0.1"}, 405, "takes POST"),
    (LOCAL, "POST", "/metrics", {"Host": "127.0.0.1"}, 405, "takes GET"),
    (LOCAL, "POST", "/query", {**JSON, "Content-Type": "text/plain"}, 415, "application/json"),
    (LOCAL, "POST", "/silences", {"Host": "127.0.0.1"}, 415, "application/json"),
    (TOKEN, "POST", "/query", JSON, 401, "bearer token is required"),
    (TOKEN, "POST", "/query", {**JSON, "Authorization": "Bearer wrong"}, 401, "bearer token"),
    (TOKEN, "POST", "/query", {**JSON, "Authorization": "Basic s3cret"}, 401, "bearer token"),
    (TOKEN, "POST", "/query", {**JSON, "Authorization": "Bearer s3cret2"}, 401, "bearer token"),
    (WILD, "POST", "/query", {**JSON, "Host": "10.1.2.3:6066"}, 401, "bearer token"),
    (WILD, "POST", "/query", {**JSON, "Host": "10.1.2.3:6066", "Authorization": "Bearer s3cret",
                              "Origin": "http://evil.example"}, 403, "cross-origin"),
])
def test_refused(policy, method, path, headers, status, why):
    refused = refusal(policy, method, path, headers)
    assert refused is not None and refused[0] == status and why in refused[1], refused


def _registry_with_an_exemplar():
    registry = CollectorRegistry()
    h = Histogram("request_seconds", "help", registry=registry, buckets=(1.0,))
    h.observe(0.5, exemplar={"trace_id": "0af7651916cd43dd8448eb211c80319c"})
    return registry


@pytest.mark.parametrize("accept, content_type", [
    # Prometheus 2.x: OpenMetrics 1.0.0 first, the text format as a fallback.
    ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "application/openmetrics-text; version=1.0.0"),
    ("application/openmetrics-text", "application/openmetrics-text; version=1.0.0"),
])
def test_metrics_are_openmetrics_with_exemplars_when_asked_for(accept, content_type):
    body, got = exposition(_registry_with_an_exemplar(), accept)
    assert got.startswith(content_type) and "charset=utf-8" in got
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert '# {trace_id="0af7651916cd43dd8448eb211c80319c"} 0.5' in text


@pytest.mark.parametrize("accept", [None, "", "*/*", "text/plain;version=0.0.4",
                                    "application/openmetrics-text;version=0.0.1,text/plain;q=0.5"])
def test_metrics_are_the_text_format_otherwise(accept):
    body, got = exposition(_registry_with_an_exemplar(), accept)
    assert got == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert 'request_seconds_bucket{le="1.0"} 1.0' in text
    assert "# EOF" not in text and "trace_id" not in text

"""The parts of fleetpulse/cardinalitycli.py that need no server: reading an
exposition, Prometheus's durations, the arguments refused before any I/O."""

import pytest

from fleetpulse.cardinalitycli import Prometheus, _promduration, parse_exposition
from fleetpulse.cli import main
from fleetpulse.errors import QueryError, RequestError

OPENMETRICS = """# HELP gen_ai_server_requests Requests by status (ok or error).
# TYPE gen_ai_server_requests counter
gen_ai_server_requests_total{model="m",node="n1",status="ok"} 10.0
gen_ai_server_requests_created{model="m",node="n1",status="ok"} 1.7e+09
gen_ai_server_requests_total{model="m",node="__other__",status="ok"} 5.0
# HELP d Duration.
# TYPE d histogram
d_bucket{le="1.0"} 1.0 # {trace_id="0af7"} 0.5 1.7e+09
d_bucket{le="+Inf"} 2.0
d_count 2.0
d_sum 3.0
# EOF
"""

TEXT = """# HELP up_total x
# TYPE up_total counter
up_total{job="a"} 1.0
up_created{job="a"} 1.7e+09
"""


def test_openmetrics_keeps_created_samples_in_their_family():
    samples = parse_exposition(OPENMETRICS, "w", openmetrics=True)
    assert [(s.family, s.name) for s in samples][:3] == [("gen_ai_server_requests", "gen_ai_server_requests_total"),
                                                         ("gen_ai_server_requests", "gen_ai_server_requests_created"),
                                                         ("gen_ai_server_requests", "gen_ai_server_requests_total")]
    assert samples[2].labels == (("model", "m"), ("node", "__other__"), ("status", "ok"))
    assert {s.name for s in samples if s.family == "d"} == {"d_bucket", "d_count", "d_sum"}


def test_the_text_format_reads_too():
    samples = parse_exposition(TEXT, "w")
    assert len(samples) == 2 and samples[0].value == 1.0


def test_something_else_is_one_clear_error():
    with pytest.raises(QueryError, match="is not a Prometheus exposition"):
        parse_exposition("<html>not metrics</html>", "http://w/metrics", openmetrics=True)


@pytest.mark.parametrize("text, seconds", [("15s", 15), ("1m30s", 90), ("1h", 3600), ("500ms", 0.5), ("", 0)])
def test_prometheus_durations(text, seconds):
    assert _promduration(text) == seconds


def test_a_prometheus_url_must_be_http():
    with pytest.raises(RequestError, match="expected a URL"):
        Prometheus("127.0.0.1:9090")


@pytest.mark.parametrize("argv, says", [
    (["--prometheus", "http://p", "--watch", "10"], "--watch reads the worker"),
    (["--prometheus", "http://p", "--over", "0"], "--over '0'"),
    (["--prometheus", "http://p", "--over", "soon"], "--over 'soon'"),
    (["--watch", "-1"], "positive number of seconds"),
])
def test_bad_arguments_are_one_line_before_any_request(argv, says, capsys):
    assert main(["cardinality", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fleetpulse: error: ") and says in err and err.count("\n") == 1, err

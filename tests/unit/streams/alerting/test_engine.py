"""Alert rules and the state machine: for, hysteresis, dedup, inhibition, silences,
and bad rule files failing with the file, line and reason."""

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.schemas import validate_event
from fleetpulse.streams.alerting.engine import AlertEngine, Silence
from fleetpulse.streams.alerting.rules import load_rules, parse_rules

RULES = """
rules:
  - name: HighErrorRate
    metric: error_rate
    op: ">"
    threshold: 0.05
    for: 2
    keep_firing_for: 2
    severity: warning
    annotations: {summary: "{{ model }} fails {{ value }}"}
  - name: VeryHighErrorRate
    metric: error_rate
    threshold: 0.2
    for: 2
    severity: critical
"""


T0 = 1_800_000_000.0


def run(engine, values, model="m", silences=()):
    events = []
    for i, value in enumerate(values):
        events += engine.observe(T0 + 10 * i, {"error_rate": [({"model": model}, value)]}, silences)
    return events


def test_fires_after_for_windows_and_resolves_after_keep_firing_for():
    engine = AlertEngine(parse_rules(RULES, "r.yml")[:1])
    events = run(engine, [0.0, 0.1, 0.1, 0.1, 0.0, 0.1, 0.0, 0.0, 0.0])
    assert [(e["status"], e["timestamp"] - T0) for e in events] == [("firing", 20.0), ("resolved", 70.0)]
    assert events[0]["annotations"]["summary"] == "m fails 0.1"
    assert events[0]["fingerprint"] == events[1]["fingerprint"]
    for event in events:
        validate_event(event, "alert")


def test_a_flapping_signal_makes_no_storm():
    engine = AlertEngine(parse_rules(RULES, "r.yml")[:1])
    assert run(engine, [0.1, 0.0] * 20) == []  # never two windows in a row
    engine = AlertEngine(parse_rules(RULES, "r.yml")[:1])
    events = run(engine, [0.1, 0.1] + [0.0, 0.1] * 20 + [0.0, 0.0])
    assert [e["status"] for e in events] == ["firing", "resolved"]  # one incident while it flaps


def test_critical_inhibits_the_warning_with_the_same_labels():
    engine = AlertEngine(parse_rules(RULES, "r.yml"))
    events = run(engine, [0.3, 0.3, 0.3])
    assert [(e["alert.name"], e["status"]) for e in events] == [("VeryHighErrorRate", "firing")]


def test_silences_hold_notifications_back():
    engine = AlertEngine(parse_rules(RULES, "r.yml")[:1])
    silence = Silence("s1", {"alertname": "HighErrorRate", "model": "m"}, 0, 1e12)
    assert run(engine, [0.1, 0.1, 0.1], silences=[silence]) == []
    other = AlertEngine(parse_rules(RULES, "r.yml")[:1])
    assert len(run(other, [0.1, 0.1], model="n", silences=[silence])) == 1


def test_default_rules_load():
    names = {r.name for r in load_rules()}
    assert {"HighLatencyP99", "HighTTFTP99", "HighErrorRate", "ModelSilent", "ModelDrift", "FeatureDrift",
            "GPUUtilizationHigh", "GPUMemoryHigh", "GPUTemperatureHigh", "TenantTrafficSpike"} <= names


def test_the_default_tenant_spike_rule_fires_once_per_spike_and_resolves():
    """Samples are only the tenants that may cross (the evaluator's SQL returns
    no others): a tenant absent from a window reads as "condition false"."""
    engine = AlertEngine([r for r in load_rules() if r.name == "TenantTrafficSpike"])
    assert engine.rules[0].source == "tenant"
    events = []
    for i, ratios in enumerate([{}, {"t1": 12.0, "t2": 3.0}, {"t1": 30.0}, {}, {}, {}]):
        samples = [({"tenant": t}, r) for t, r in ratios.items()]
        events += engine.observe(T0 + 10 * i, {"tenant_requests_ratio": samples})
    assert [(e["status"], e["labels"]["tenant"], e["timestamp"] - T0) for e in events] == [
        ("firing", "t1", 10.0), ("resolved", "t1", 40.0)]
    assert events[0]["annotations"]["summary"] == "tenant t1 sent 12 times its median requests per window"


def test_the_default_feature_drift_rule_alerts_per_model_and_feature():
    """Drift alerts come from the rules alone: one incident per (model, feature),
    firing on the first drift decision, resolved after two windows without one."""
    engine = AlertEngine([r for r in load_rules() if r.name == "FeatureDrift"])
    events = []
    for i, level in enumerate([0, 1, 3, 0, 1, 0, 0, 0]):  # 0 stable, 1 drift, 2 warning, 3 critical
        samples = [({"model": "m", "feature": "ttft"}, level), ({"model": "m", "feature": "latency"}, 0)]
        events += engine.observe(T0 + 10 * i, {"feature_drift_level": samples})
    assert [(e["status"], e["timestamp"] - T0) for e in events] == [("firing", 10.0), ("resolved", 60.0)]
    assert events[0]["labels"] == {"alertname": "FeatureDrift", "model": "m", "feature": "ttft", "severity": "warning"}
    assert events[0]["annotations"]["summary"].startswith("ttft of m has drifted (level 1")
    assert events[0]["fingerprint"] == events[1]["fingerprint"]
    for event in events:
        validate_event(event, "alert")


def test_drift_metrics_are_known_to_rule_files():
    rules = parse_rules("rules:\n  - {name: A, metric: drift_level, threshold: 2}\n"
                        "  - {name: B, metric: feature_drift_level, threshold: 1}\n", "r.yml")
    assert [(r.name, r.source) for r in rules] == [("A", "drift"), ("B", "drift")]


@pytest.mark.parametrize("text, message", [
    ("rules:\n  - name: X\n    metric: nope\n    threshold: 1\n", "r.yml:3: rule 'X': unknown metric 'nope'"),
    ("rules:\n  - name: X\n    metric: error_rate\n    threshold: high\n", "r.yml:4: rule 'X': 'threshold' must be a number"),
    ("rules:\n  - name: X\n    metric: error_rate\n    threshold: 1\n    for: 0\n", "r.yml:5: rule 'X': 'for' must be"),
    ("rules:\n  - name: X\n    metric: error_rate\n    threshold: 1\n    sevrity: x\n", "r.yml:5: rule 'X': unknown keys"),
    ("rules: [\n", "r.yml:2: not valid YAML"),
    ("alerts: []\n", "r.yml:1: expected a top-level 'rules:' list"),
])
def test_bad_rules_name_the_file_line_and_reason(text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_rules(text, "r.yml")


def test_label_sets_that_come_and_go_are_forgotten_and_still_alert_when_they_return():
    engine = AlertEngine(parse_rules(RULES, "r.yml"))
    for i in range(1000):  # a new node every window, each seen once and healthy
        engine.observe(T0 + 10 * i, {"error_rate": [({"node": f"n{i}"}, 0.0)]})
    assert len(engine._states) == 0, "idle label sets hold no state"
    engine.observe(T0 + 10_000, {"error_rate": [({"node": "n1"}, 0.5)]})  # an old node comes back, failing
    fired = engine.observe(T0 + 10_010, {"error_rate": [({"node": "n1"}, 0.5)]})
    assert {e["alert.name"] for e in fired if e["status"] == "firing"} == {"VeryHighErrorRate"}
    assert len(engine._states) == 2, "pending and firing states are kept"


def test_the_default_quality_rules_fire_per_model_on_their_rates():
    """HighRefusalRate: > 5% for three windows; a model without analysed
    requests (NaN rate) never fires, one at 5% exactly neither."""
    engine = AlertEngine([r for r in load_rules() if r.name in ("HighRefusalRate", "HighTruncationRate")])
    events = []
    for i, rate in enumerate([0.08, 0.08, 0.08, 0.08, 0.0, 0.0, 0.0, 0.0]):
        samples = {"refusal_rate": [({"model": "m"}, rate), ({"model": "quiet"}, float("nan")),
                                    ({"model": "edge"}, 0.05)],
                   "truncation_rate": [({"model": "m"}, 0.0)]}
        events += engine.observe(T0 + 10 * i, samples)
    assert [(e["alert.name"], e["labels"]["model"], e["status"], e["timestamp"] - T0) for e in events] == [
        ("HighRefusalRate", "m", "firing", 20.0), ("HighRefusalRate", "m", "resolved", 60.0)]
    assert events[0]["annotations"]["summary"] == "m: 0.08 of answers are refusals (> 5%)"

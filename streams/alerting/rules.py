"""Alert rules from YAML, checked at start-up (pure).

A rule compares one per-window metric with a threshold, per label set::

    rules:
      - name: HighErrorRate
        metric: error_rate          # see METRICS
        op: ">"
        threshold: 0.05
        for: 2                      # consecutive windows before it fires
        keep_firing_for: 2          # windows the condition must stay false to resolve
        severity: warning           # info | warning | critical
        labels: {team: inference}
        annotations:
          summary: "{{ model }}: {{ value }} of requests fail"

A bad file fails start-up with the file, the line and the reason.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import operator
from pathlib import Path

import yaml

from fleetpulse.errors import ConfigError

#: metric -> (source, column). ``request``: per (window, model) from request_stats_model;
#: ``silence``: requests per window of models seen before (a silent model reads 0);
#: ``drift``: the drift decision per (window, model, feature) from drift_windows, 0 stable or
#: insufficient, 1 drift, 2 warning, 3 critical: ``feature_drift_level`` per feature,
#: ``drift_level`` the worst of a model's features;
#: ``gpu``: per (window, node, gpu) from the gpu_windows table (streams/gpu/windows.py);
#: ``tenant``: per (window, tenant) from tenant_windows, a tenant's requests over the median
#: of its requests in the FLEETPULSE_TENANT_BASELINE_WINDOWS windows before (absent ones as 0),
#: for tenants whose median is above 0 (seen in at least half of them).
METRICS = {
    "error_rate": ("request", "error_rate"),
    "latency_p99": ("request", "latency_p99"),
    "ttft_p99": ("request", "ttft_p99"),
    # Output quality (docs/quality.md); NaN, so never firing, in a window without its denominator.
    "refusal_rate": ("request", "refusal_rate"),
    "empty_rate": ("request", "empty_rate"),
    "truncation_rate": ("request", "truncation_rate"),
    "content_filter_rate": ("request", "content_filter_rate"),
    "format_failure_rate": ("request", "format_failure_rate"),
    "repetition_p90": ("request", "repetition_p90"),
    "requests": ("silence", "requests"),
    "drift_level": ("drift", "drift_level"),
    "feature_drift_level": ("drift", "feature_drift_level"),
    "gpu_utilization_avg": ("gpu", "utilization_avg"),
    "gpu_memory_used_ratio": ("gpu", "memory_used_ratio"),
    "gpu_temperature_max": ("gpu", "temperature_max"),
    "tenant_requests_ratio": ("tenant", "requests_ratio"),
}
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}
SEVERITIES = ("info", "warning", "critical")
_KEYS = {"name", "metric", "op", "threshold", "for", "keep_firing_for", "severity", "labels", "annotations"}


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    op: str
    threshold: float
    for_windows: int
    keep_firing_for: int
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def source(self) -> str:
        return METRICS[self.metric][0]

    def holds(self, value: float | None) -> bool:
        return value is not None and value == value and OPS[self.op](value, self.threshold)


def load_rules(path: str = "") -> list[Rule]:
    """The rules in ``path``, or the shipped defaults when it is empty."""
    if path:
        where = Path(path)
        try:
            text = where.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read alert rules ({exc.strerror})") from exc
    else:
        where = Path("streams/alerting/default_rules.yml")
        text = importlib.resources.files("fleetpulse.streams.alerting").joinpath("default_rules.yml").read_text()
    return parse_rules(text, str(where))


def parse_rules(text: str, where: str) -> list[Rule]:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else "?"
        raise ConfigError(f"{where}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    rules_node = _field(root, "rules", where) if root is not None else None
    if not isinstance(rules_node, yaml.SequenceNode):
        raise ConfigError(f"{where}:1: expected a top-level 'rules:' list")
    rules, names = [], set()
    for node in rules_node.value:
        rule = _rule(node, where)
        if rule.name in names:
            raise ConfigError(f"{where}:{node.start_mark.line + 1}: rule {rule.name!r} is defined twice")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _field(node, key: str, where: str):
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{where}:{node.start_mark.line + 1}: expected a mapping")
    for k, v in node.value:
        if k.value == key:
            return v
    return None


def _rule(node, where: str) -> Rule:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{where}:{line}: each rule is a mapping")
    data = yaml.safe_load(yaml.serialize(node))
    name = data.get("name")

    def fail(reason: str, key: str | None = None) -> ConfigError:
        at = next((v.start_mark.line + 1 for k, v in node.value if k.value == key), line) if key else line
        return ConfigError(f"{where}:{at}: rule {name or '?'!r}: {reason}")

    unknown = set(data) - _KEYS
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}", sorted(unknown)[0])
    if not isinstance(name, str) or not name.isidentifier():
        raise fail("'name' must be an identifier like HighErrorRate", "name")
    if data.get("metric") not in METRICS:
        raise fail(f"unknown metric {data.get('metric')!r}; known: {', '.join(METRICS)}", "metric")
    if data.get("op", ">") not in OPS:
        raise fail(f"op must be one of {' '.join(OPS)}", "op")
    if not isinstance(data.get("threshold"), (int, float)) or isinstance(data.get("threshold"), bool):
        raise fail("'threshold' must be a number", "threshold")
    for key in ("for", "keep_firing_for"):
        if not isinstance(data.get(key, 1), int) or data.get(key, 1) < 1:
            raise fail(f"'{key}' must be a whole number of windows >= 1", key)
    if data.get("severity", "warning") not in SEVERITIES:
        raise fail(f"severity must be one of {', '.join(SEVERITIES)}", "severity")
    for key in ("labels", "annotations"):
        value = data.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise fail(f"'{key}' must map names to strings", key)
    return Rule(name, data["metric"], data.get("op", ">"), float(data["threshold"]), data.get("for", 1),
                data.get("keep_firing_for", 1), data.get("severity", "warning"), data.get("labels", {}),
                data.get("annotations", {}))

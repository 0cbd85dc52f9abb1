"""The alert state machine (pure): ``for``, ``keep_firing_for``, dedup by
fingerprint, inhibition and silences.

Per (rule, label set): the condition must hold ``for`` windows in a row to fire,
and be false ``keep_firing_for`` windows in a row to resolve (hysteresis: a
flapping signal neither fires on every spike nor resolves on every dip). An
alert is *notified* while it fires and is neither silenced nor inhibited (a
firing critical alert inhibits warnings with the same labels, alertname and
severity aside). Events are emitted only when the notified set changes: one
firing event per incident and one resolved event, never a storm.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Iterable

from fleetpulse.streams.alerting.rules import Rule

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs


@dataclasses.dataclass
class _State:
    pending: int = 0
    clear: int = 0
    firing: bool = False
    notified: bool = False
    started_at: float = 0.0
    value: float = 0.0


@dataclasses.dataclass(frozen=True)
class Silence:
    id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    comment: str = ""

    def covers(self, labels: dict[str, str], at: float) -> bool:
        return self.starts_at <= at < self.ends_at and all(labels.get(k) == v for k, v in self.matchers.items())


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha1("|".join(f"{k}={v}" for k, v in sorted(labels.items())).encode()).hexdigest()[:16]


def render(template: str, values: dict[str, str]) -> str:
    return re.sub(r"{{\s*(\w+)\s*}}", lambda m: values.get(m[1], m[0]), template)


class AlertEngine:
    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self._states: dict[tuple[str, str, Labels], _State] = {}

    def observe(self, at: float, samples: dict[str, list[tuple[dict[str, str], float | None]]],
                silences: Iterable[Silence] = ()) -> list[dict]:
        """Advance one window ending at ``at``; return the alert events to send.
        ``samples`` maps a metric to its (labels, value) pairs in this window."""
        for rule in self.rules:
            seen = set()
            for labels, value in samples.get(rule.metric, []):
                key = (rule.name, rule.severity, tuple(sorted(labels.items())))
                seen.add(key)
                self._step(self._states.setdefault(key, _State()), rule, rule.holds(value), value, at)
            for key, state in self._states.items():  # label sets with no sample: condition is false
                if key[0] == rule.name and key[1] == rule.severity and key not in seen:
                    self._step(state, rule, False, None, at)
        events = self._notify(at, list(silences))
        self._forget_idle()
        return events

    def _forget_idle(self) -> None:
        """Drop the state of label sets that hold nothing: not pending, not
        firing, not notified. A fresh state is the same, so nothing changes,
        and a model or node that went away stops costing memory and time."""
        idle = [key for key, s in self._states.items() if not (s.pending or s.firing or s.notified)]
        for key in idle:
            del self._states[key]

    @staticmethod
    def _step(state: _State, rule: Rule, holds: bool, value: float | None, at: float) -> None:
        if holds:
            state.pending += 1
            state.clear = 0
            state.value = float(value)
            if not state.firing and state.pending >= rule.for_windows:
                state.firing, state.started_at = True, at
        else:
            state.pending = 0
            if state.firing:
                state.clear += 1
                if state.clear >= rule.keep_firing_for:
                    state.firing, state.clear = False, 0

    def _notify(self, at: float, silences: list[Silence]) -> list[dict]:
        rules = {(r.name, r.severity): r for r in self.rules}
        critical = {labels for (name, sev, labels), s in self._states.items() if s.firing and sev == "critical"}
        events = []
        for (name, severity, labels), state in self._states.items():
            rule = rules[(name, severity)]
            full = self._labels(rule, labels)
            inhibited = severity == "warning" and labels in critical
            silenced = any(s.covers(full, at) for s in silences)
            wanted = state.firing and not inhibited and not silenced
            if wanted and not state.notified:
                state.notified = True
                events.append(self._event(rule, full, state, at, "firing"))
            elif state.notified and not state.firing:
                state.notified = False
                events.append(self._event(rule, full, state, at, "resolved"))
        return events

    def notified(self) -> list[dict]:
        """The alerts currently notified, for re-sending to Alertmanager."""
        rules = {(r.name, r.severity): r for r in self.rules}
        return [self._event(rules[(n, sev)], self._labels(rules[(n, sev)], labels), s, s.started_at, "firing")
                for (n, sev, labels), s in self._states.items() if s.notified]

    @staticmethod
    def _labels(rule: Rule, labels: Labels) -> dict[str, str]:
        return {**rule.labels, **dict(labels), "alertname": rule.name, "severity": rule.severity}

    @staticmethod
    def _event(rule: Rule, labels: dict[str, str], state: _State, at: float, status: str) -> dict:
        values = {**labels, "value": f"{state.value:.3g}", "threshold": f"{rule.threshold:g}"}
        return {
            "type": "alert", "version": 1, "timestamp": float(at), "alert.name": rule.name, "status": status,
            "severity": rule.severity, "fingerprint": fingerprint(labels), "labels": labels,
            "annotations": {k: render(v, values) for k, v in rule.annotations.items()},
            "starts_at": float(state.started_at), "ends_at": float(at) if status == "resolved" else None,
            "value": float(state.value),
        }

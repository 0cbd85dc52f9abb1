"""The cardinality report's judgement: series, label values, churn or explosion (pure).

``fleetpulse cardinality`` (I/O in fleetpulse/cardinalitycli.py) reads either
the worker's own /metrics or a Prometheus, turns what it read into the
numbers below, and this module judges them and writes the report. No I/O
here: the unit tests feed it crafted TSDB-status and rate inputs.

Definitions (docs/architecture.md, "Cardinality report", says why):

- **live series**: series a group exports now. For a Prometheus, per job, the
  sum of ``scrape_samples_post_metric_relabeling`` over its targets (what the
  last scrape stored); for the worker, the samples of one read of /metrics.
- **created**: series new to a target over the window: the sum of
  ``scrape_series_added`` (a series absent from the target's previous scrape,
  so a target's first scrape counts whole); for the worker, the set
  differences between successive reads of /metrics (``--watch``).
- **removed**: series a target stopped exporting over the window (they went
  stale): ``created - (live now - live just before the window)``, the
  identity ``|S_end| - |S_start| = added - removed`` summed over the scrapes.
  Prometheus's own ``prometheus_tsdb_head_series_removed_total`` only moves at
  head GC (about every 2 h), so it cannot show churn in a shorter window.
- **per hour**: over the span actually observed: the window (``--over``),
  no longer than the data the Prometheus holds, nor than the group's scrapes
  times its scrape interval.

A group is **churn** when it removes many series per hour relative to its
live series (values that change with each deploy: pods, versions), and a
**stable explosion** when it does not, but one label holds an id's worth of
live values (or the group holds very many series per target). The labels
responsible: for churn, the labels whose values seen over the window most
exceed their live values; for explosion, the labels with the most live values.
"""

from __future__ import annotations

import dataclasses
import re

# -- thresholds ---------------------------------------------------------------

#: Churn: removed series per hour, per live series. Prometheus keeps a removed
#: series in its head (memory, postings) until head GC, which follows each cut
#: of a 2 h block: a dead series stays 2-3 h. At 0.25 per live series per hour
#: the head carries 50-75% more series than are live; below it, deploys are
#: rare enough that their dead series cost little.
CHURN_REMOVED_PER_LIVE_HOUR = 0.25
#: ... and at least this many removed per hour, whatever the ratio: a few
#: hundred dead series in the head cost nothing (a restart of a small target).
CHURN_MIN_REMOVED_PER_HOUR = 100.0
#: An id used as a label: this many distinct live values in one label, and
#: more than the group has targets (a target label such as ``instance`` has
#: one value per target and is not an id). Bounded labels (le, method, status
#: code, model, GPU, route) stay in the tens or hundreds; user, request,
#: session, trace ids and IP addresses run to thousands.
ID_LIKE_VALUES = 1000
#: Or this many live series per target without one such label: a product of
#: several labels. A node_exporter exports 1-3 thousand, a busy application a
#: few thousand; ten thousand per target is where Prometheus's memory (a few
#: KiB per head series) starts to be dominated by one target.
SERIES_PER_TARGET_HIGH = 10_000
#: A label is named for churn when the values it lost (seen over the window,
#: not live now) are at least this share of the label that lost the most:
#: a rollout changes ``pod`` and ``instance`` together, and both are named.
CHURN_LABEL_SHARE = 0.5
#: Rates need this much observed time; less than it and the report says the
#: window is too short instead of dividing by almost nothing.
MIN_SPAN_S = 5.0
#: At most this many labels named per group.
MAX_CULPRITS = 3

OK, CHURN, EXPLOSION, UNKNOWN = "ok", "churn", "stable explosion", "too short to tell"
#: Labels a Prometheus or the target adds, never an id by themselves.
TARGET_LABELS = frozenset({"job", "instance"})
#: fleetpulse's folded value (fleetpulse.schemas.fields.OTHER).
OTHER = "__other__"


# -- inputs -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LabelValues:
    """One label of a group: distinct values among live series, and seen over the window."""

    name: str
    live: int
    seen: int

    @property
    def gone(self) -> int:
        return max(0, self.seen - self.live)


@dataclasses.dataclass(frozen=True)
class GroupStats:
    """What was read about one group of series (a Prometheus job, or the worker)."""

    name: str
    live: int
    created: int | None = None   # None: not observed (the worker without --watch)
    removed: int | None = None
    span_s: float = 0.0
    targets: int = 1
    before: int | None = None    # live series just before the window
    labels: tuple[LabelValues, ...] = ()


@dataclasses.dataclass(frozen=True)
class Culprit:
    label: str
    live_values: int
    seen_values: int
    reason: str
    fix: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    group: GroupStats
    kind: str
    created_per_hour: float | None
    removed_per_hour: float | None
    culprits: tuple[Culprit, ...]
    note: str = ""

    @property
    def flagged(self) -> bool:
        return self.kind in (CHURN, EXPLOSION)

    def as_dict(self) -> dict:
        g = self.group
        return {"group": g.name, "kind": self.kind, "live_series": g.live, "targets": g.targets,
                "live_before": g.before, "created": g.created, "removed": g.removed, "span_s": round(g.span_s, 3),
                "created_per_hour": _round(self.created_per_hour), "removed_per_hour": _round(self.removed_per_hour),
                "labels": [dataclasses.asdict(label) for label in g.labels],
                "culprits": [dataclasses.asdict(c) for c in self.culprits], "note": self.note}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def removed_from(created: int, live: int, before: int | None) -> int:
    """Series that went away over the window: ``created - (live - before)``
    (``before`` None: the group did not exist before the window). Never below 0:
    ``scrape_series_added`` is approximate (Prometheus says so)."""
    return max(0, created - live + (before or 0))


def per_hour(count: int | None, span_s: float) -> float | None:
    if count is None or span_s < MIN_SPAN_S:
        return None
    return count * 3600.0 / span_s


# -- judgement ----------------------------------------------------------------

def classify(group: GroupStats) -> Verdict:
    created_h, removed_h = per_hour(group.created, group.span_s), per_hour(group.removed, group.span_s)
    churn = removed_h is not None and removed_h >= CHURN_MIN_REMOVED_PER_HOUR \
        and removed_h >= CHURN_REMOVED_PER_LIVE_HOUR * max(group.live, 1)
    if churn:
        return Verdict(group, CHURN, created_h, removed_h, _churn_culprits(group),
                       f"{removed_h:,.0f} series removed per hour against {group.live:,} live: "
                       f"Prometheus keeps each for 2-3 h after it goes")
    ids = [label for label in group.labels if _id_like(label, group.targets)]
    per_target = group.live / max(group.targets, 1)
    if ids or per_target >= SERIES_PER_TARGET_HIGH:
        culprits = sorted(ids or [label for label in group.labels if label.name not in TARGET_LABELS],
                          key=lambda label: -label.live)[:MAX_CULPRITS]
        reason = (f"{per_target:,.0f} live series per target" if not ids else "")
        return Verdict(group, EXPLOSION, created_h, removed_h,
                       tuple(_culprit(label, EXPLOSION, reason) for label in culprits),
                       f"{group.live:,} live series, few removed: the series stay")
    if removed_h is None and group.removed is not None:
        return Verdict(group, UNKNOWN, created_h, removed_h, (),
                       f"observed for {group.span_s:.1f} s, under {MIN_SPAN_S:g} s: too short for rates")
    return Verdict(group, OK, created_h, removed_h, ())


def _id_like(label: LabelValues, targets: int) -> bool:
    return label.name not in TARGET_LABELS and label.live >= ID_LIKE_VALUES and label.live > targets


def _churn_culprits(group: GroupStats) -> tuple[Culprit, ...]:
    losing = sorted((label for label in group.labels if label.gone > 0 and label.name != "job"),
                    key=lambda label: -label.gone)
    if not losing:
        return ()
    top = losing[0].gone
    return tuple(_culprit(label, CHURN) for label in losing[:MAX_CULPRITS] if label.gone >= CHURN_LABEL_SHARE * top)


def _culprit(label: LabelValues, kind: str, reason: str = "") -> Culprit:
    if not reason:
        reason = (f"{label.seen:,} values seen over the window, {label.live:,} live" if kind == CHURN
                  else f"{label.live:,} live values")
    return Culprit(label.name, label.live, label.seen, reason, suggest_fix(label.name, kind))


# -- fixes ----------------------------------------------------------------------

_DEPLOY = re.compile(r"^(instance|pod|pod_name|pod_ip|container|container_id|replicaset|pod_template_hash|"
                     r"controller_revision_hash|hostname|host|node|ip|address|task|task_id|allocation)$")
_VERSION = re.compile(r"(version|build|commit|sha|revision|release|image|git|tag)")
_ID = re.compile(r"(^|_)(id|ids|uid|uuid|user|users|tenant|customer|account|session|request|trace|span|email|"
                 r"mail|phone|client|token|key|order|job_id|query)($|_)")
_PATH = re.compile(r"(path|url|uri|endpoint|route|handler)")
_FLEETPULSE = frozenset({"model", "node", "error_type", "tenant"})


def suggest_fix(label: str, kind: str) -> str:
    """One fix for one label, by what its name says it holds and how it grows."""
    drop = (f"at the source, stop exporting it; in Prometheus, metric_relabel_configs: "
            f"[{{action: labeldrop, regex: {label}}}] (only where the series stay distinct without it; "
            f"else drop the metric with action: drop on __name__)")
    if label == "__name__":
        return ("metric names carry data (an id or a value in the name): put it in a label with bounded "
                "values, or drop those metrics with metric_relabel_configs action: drop on __name__")
    if label == "le":
        return "too many histogram buckets: fewer buckets, or native histograms"
    if kind == CHURN:
        if _DEPLOY.match(label):
            return (f"{label} changes with each rollout: aggregate in a recording rule "
                    f"(sum without ({label}) ...) and keep the raw series only as long as needed, or "
                    f"{drop}; scrape less often or deploy less often if the per-{label} detail matters")
        if _VERSION.search(label):
            return (f"move {label} into one info metric (e.g. build_info{{{label}=...}} 1) and join it with "
                    f"group_left when needed; labeldrop it everywhere else")
        return (f"{label}'s values change over time: hash or bucket it into a fixed set, or {drop}; "
                f"aggregate in a recording rule")
    if label in _FLEETPULSE:
        return (f"fleetpulse caps {label}: lower FLEETPULSE_METRIC_LABEL_CAP (values past it fold into "
                f"__other__, exact in ClickHouse) or remove it from FLEETPULSE_METRIC_LABELS")
    if _PATH.search(label):
        return f"normalise {label} to the route template (/users/:id), or {drop}"
    if _ID.search(label) or kind == EXPLOSION:
        return (f"{label} is an id used as a label: {drop}; keep the id in exemplars (trace_id) or logs, "
                f"per-user usage in ClickHouse, and only the top-K heavy hitters in Prometheus "
                f"(the rest as __other__, as fleetpulse's tenants and LabelCap do); or hash it into a "
                f"fixed number of buckets")
    return f"aggregate in a recording rule, or {drop}"



def folded_fix(label: str) -> str:
    return (f"values of {label} past FLEETPULSE_METRIC_LABEL_CAP are exported as {OTHER}: the series stay "
            f"bounded and ClickHouse keeps every value exactly (query request_windows by {label}); raise "
            f"the cap only if each value must be its own series")


# -- the worker's own /metrics --------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sample:
    """One line of an exposition: a series and its value."""

    family: str
    name: str
    labels: tuple[tuple[str, str], ...]  # sorted
    value: float = 0.0

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.name, self.labels


@dataclasses.dataclass(frozen=True)
class Churn:
    created: int
    removed: int
    span_s: float
    examples: dict[str, list[str]]  # a few series created and removed, as text


def churn_between(reads: list[tuple[float, list[Sample]]], examples: int = 5) -> Churn:
    """Series created and removed over successive reads of /metrics: the set
    differences of their series, read to read."""
    created = removed = 0
    shown: dict[str, list[str]] = {"created": [], "removed": []}
    previous: set | None = None
    for _, samples in reads:
        current = {s.key for s in samples}
        if previous is not None:
            for kind, new in (("created", current - previous), ("removed", previous - current)):
                shown[kind] += [_series_text(key) for key in sorted(new)][:examples - len(shown[kind])]
            created += len(current - previous)
            removed += len(previous - current)
        previous = current
    return Churn(created, removed, reads[-1][0] - reads[0][0] if len(reads) > 1 else 0.0, shown)


def _series_text(key: tuple[str, tuple[tuple[str, str], ...]]) -> str:
    name, labels = key
    return name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")


def exposition_report(reads: list[tuple[float, list[Sample]]], url: str = "") -> dict:
    """The worker's cardinality from the last of ``reads`` (reads of /metrics,
    ``(time, samples)``), with churn when there are several (``--watch``)."""
    samples = reads[-1][1]
    families: dict[str, dict[str, object]] = {}
    live: dict[str, set[str]] = {}
    other: dict[str, int] = {}
    folded: dict[str, float] = {}
    for s in samples:
        family = families.setdefault(s.family, {"series": 0, "labels": {}})
        family["series"] += 1
        for key, value in s.labels:
            family["labels"].setdefault(key, set()).add(value)
            live.setdefault(key, set()).add(value)
            if value == OTHER:
                other[key] = other.get(key, 0) + 1
        if s.name == "fleetpulse_label_values_folded_total":
            folded[dict(s.labels).get("label", "")] = s.value
    seen = {key: set(values) for key, values in live.items()}
    created = removed = churn = None
    span = 0.0
    if len(reads) > 1:
        churn = churn_between(reads)
        created, removed, span = churn.created, churn.removed, churn.span_s
        for _, read in reads:
            for s in read:
                for key, value in s.labels:
                    seen.setdefault(key, set()).add(value)
    group = GroupStats("fleetpulse worker", len(samples), created, removed, span, 1, None,
                       tuple(LabelValues(k, len(live.get(k, ())), len(v)) for k, v in sorted(seen.items())))
    verdict = classify(group)
    return {
        "source": "worker", "url": url, "series": len(samples),
        "families": sorted(({"name": name, "series": f["series"],
                             "labels": {k: len(v) for k, v in sorted(f["labels"].items())}}
                            for name, f in families.items()), key=lambda f: (-f["series"], f["name"])),
        "labels": {k: {"values": len(v), "other_series": other.get(k, 0)} for k, v in sorted(live.items())},
        "folded": [{"label": label, "requests": n, "fix": folded_fix(label)}
                   for label, n in sorted(folded.items()) if n > 0],
        "churn": None if created is None else {
            "reads": len(reads), "span_s": round(span, 3), "created": created, "removed": removed,
            "created_per_hour": _round(verdict.created_per_hour), "removed_per_hour": _round(verdict.removed_per_hour),
            "examples": churn.examples},
        "churn_note": "" if created is not None else
        "one read of /metrics cannot show churn: run with --watch SECONDS (several reads), or --prometheus URL",
        "verdict": verdict.as_dict(),
    }


# -- a Prometheus -----------------------------------------------------------------

def tsdb_tops(status: dict) -> dict:
    """The top lists of /api/v1/status/tsdb, as {name: [[name, value], ...]}."""
    names = ("seriesCountByMetricName", "labelValueCountByLabelName", "memoryInBytesByLabelName",
             "seriesCountByLabelValuePair")
    return {name: [[entry.get("name", ""), int(entry.get("value", 0))] for entry in status.get(name) or []]
            for name in names}


def prometheus_report(url: str, over_s: float, span_s: float, head_series: int, groups: list[GroupStats],
                      tsdb_status: dict, counters: dict | None = None) -> dict:
    """The report on one Prometheus: every group (job) judged, the TSDB's own
    view (head series, top lists), and the whole against its live series."""
    verdicts = sorted((classify(g) for g in groups),
                      key=lambda v: (not v.flagged, -(v.removed_per_hour or 0), -v.group.live, v.group.name))
    live = sum(g.live for g in groups)
    created = sum(g.created or 0 for g in groups)
    removed = sum(g.removed or 0 for g in groups)
    whole = classify(GroupStats("all jobs", live, created, removed, span_s, sum(g.targets for g in groups)))
    tops = tsdb_tops(tsdb_status)
    high = [{"label": name, "values": n, "fix": suggest_fix(name, EXPLOSION)}
            for name, n in tops["labelValueCountByLabelName"] if n >= ID_LIKE_VALUES and name not in TARGET_LABELS]
    return {
        "source": "prometheus", "url": url, "over_s": over_s, "span_s": round(span_s, 3),
        "head_series": head_series, "live_series": live,
        "head_per_live": round(head_series / live, 3) if live else None,
        "created": created, "removed": removed,
        "created_per_hour": _round(whole.created_per_hour), "removed_per_hour": _round(whole.removed_per_hour),
        "kind": whole.kind if not any(v.flagged for v in verdicts) else
        " + ".join(sorted({v.kind for v in verdicts if v.flagged})),
        "tsdb_counters": counters, "groups": [v.as_dict() for v in verdicts],
        "high_value_labels": high, "tsdb": tops,
    }


def flagged(report: dict) -> bool:
    """Whether the report found churn or a stable explosion (exit status 3)."""
    if report["source"] == "worker":
        return report["verdict"]["kind"] in (CHURN, EXPLOSION)
    return any(g["kind"] in (CHURN, EXPLOSION) for g in report["groups"])


# -- text ---------------------------------------------------------------------------

def render(report: dict) -> str:
    return _render_worker(report) if report["source"] == "worker" else _render_prometheus(report)


def _render_worker(r: dict) -> str:
    out = [f"fleetpulse worker {r['url']}: {r['series']:,} series in {len(r['families'])} metric families", ""]
    out += _table(["metric family", "series", "labels (distinct values)"],
                  [[f["name"], f"{f['series']:,}", ", ".join(f"{k}={n}" for k, n in f["labels"].items())]
                   for f in r["families"]])
    out += [""] + _table(["label", "values", f"{OTHER} series"],
                         [[k, f"{v['values']:,}", f"{v['other_series']:,}"] for k, v in r["labels"].items()])
    out.append("")
    if r["folded"]:
        out.append(f"Folded into {OTHER} (fleetpulse_label_values_folded_total counts the requests whose value was "
                   f"past the cap):")
        out += [f"  {f['label']}: {f['requests']:,.0f} requests. Fix: {f['fix']}" for f in r["folded"]]
    else:
        out.append(f"Nothing folded into {OTHER}: every label is under FLEETPULSE_METRIC_LABEL_CAP.")
    churn = r["churn"]
    if churn is None:
        out.append(f"Churn: {r['churn_note']}.")
    else:
        out.append(f"Churn over {churn['reads']} reads in {churn['span_s']:.0f} s: {churn['created']:,} series "
                   f"created ({_rate(churn['created_per_hour'])}), {churn['removed']:,} removed "
                   f"({_rate(churn['removed_per_hour'])}).")
        for kind, series in churn["examples"].items():
            out += [f"  {kind}: {text}" for text in series]
    out += _verdict_lines(r["verdict"])
    return "\n".join(out)


def _render_prometheus(r: dict) -> str:
    ratio = f", {r['head_per_live']:.2f} head series per live one" if r["head_per_live"] else ""
    out = [f"Prometheus {r['url']}: {r['head_series']:,} head series, {r['live_series']:,} live in the last "
           f"scrapes{ratio}",
           f"Window: {_duration(r['span_s'])} observed (asked --over {_duration(r['over_s'])}); "
           f"{r['created']:,} series created ({_rate(r['created_per_hour'])}), {r['removed']:,} removed "
           f"({_rate(r['removed_per_hour'])}); verdict: {r['kind']}",
           "(created counts a new target's first scrape whole; removed: series that went stale)"]
    c = r.get("tsdb_counters")
    if c:
        out.append(f"TSDB counters ({c['basis']}): created {_rate(c.get('created_per_hour'))}, removed "
                   f"{_rate(c.get('removed_per_hour'))} (removed moves only at head GC, about every 2 h)")
    out.append("")
    out += _table(["job", "targets", "live", "created/h", "removed/h", "verdict", "labels responsible"],
                  [[g["group"], str(g["targets"]), f"{g['live_series']:,}", _rate(g["created_per_hour"], ""),
                    _rate(g["removed_per_hour"], ""), g["kind"],
                    ", ".join(f"{c['label']} ({c['reason']})" for c in g["culprits"])] for g in r["groups"]])
    for g in r["groups"]:
        if g["culprits"]:
            out += ["", f"{g['group']}: {g['kind']}. {g['note']}."]
            out += [f"  {c['label']}: {c['reason']}. Fix: {c['fix']}" for c in g["culprits"]]
    if r["high_value_labels"]:
        out += ["", "Labels with an id's worth of values in the head (all jobs):"]
        out += [f"  {h['label']}: {h['values']:,} values" for h in r["high_value_labels"]]
    tops = r["tsdb"]
    for title, key in (("Series by metric name (TSDB status)", "seriesCountByMetricName"),
                       ("Values by label name", "labelValueCountByLabelName"),
                       ("Series by label pair", "seriesCountByLabelValuePair"),
                       ("Memory by label name (bytes)", "memoryInBytesByLabelName")):
        if tops[key]:
            out += ["", *_table([title, "count"], [[name, f"{n:,}"] for name, n in tops[key]])]
    return "\n".join(out)


def _verdict_lines(v: dict) -> list[str]:
    lines = [f"Verdict: {v['kind']}" + (f". {v['note']}." if v["note"] else ".")]
    lines += [f"  {c['label']}: {c['reason']}. Fix: {c['fix']}" for c in v["culprits"]]
    return lines


def _rate(value: float | None, unknown: str = "rate unknown") -> str:
    if value is None:
        return unknown
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.1f}{suffix}/h"
    return f"{value:.0f}/h"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds / 3600:g}h" if seconds % 360 == 0 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]

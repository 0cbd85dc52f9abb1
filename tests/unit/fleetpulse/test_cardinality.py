"""The cardinality report's judgement (fleetpulse/cardinality.py) on crafted
TSDB-status answers, scrape statistics and reads of /metrics."""

import pytest

from fleetpulse.cardinality import (CHURN, CHURN_MIN_REMOVED_PER_HOUR, CHURN_REMOVED_PER_LIVE_HOUR, EXPLOSION,
                                    ID_LIKE_VALUES, OK, SERIES_PER_TARGET_HIGH, UNKNOWN, GroupStats, LabelValues,
                                    Sample, churn_between, classify, exposition_report, flagged, per_hour,
                                    prometheus_report, removed_from, render, suggest_fix)

HOUR = 3600.0


def labels(**counts: tuple[int, int]) -> tuple[LabelValues, ...]:
    return tuple(LabelValues(name, live, seen) for name, (live, seen) in counts.items())


ROLLOUT = GroupStats("rollout", live=20, created=120, removed=100, span_s=16.5, targets=1, before=None,
                     labels=labels(__name__=(6, 6), instance=(1, 1), pod=(1, 6), route=(20, 20)))
ACCOUNTS = GroupStats("accounts", live=5000, created=5000, removed=0, span_s=16.5, targets=1, before=None,
                      labels=labels(__name__=(6, 6), instance=(1, 1), user_id=(5000, 5000)))

# What Prometheus 2.42 answered for those two jobs (shortened).
TSDB_STATUS = {
    "headStats": {"numSeries": 5135, "numLabelPairs": 5060, "chunkCount": 5135, "minTime": 1, "maxTime": 2},
    "seriesCountByMetricName": [{"name": "app_user_requests_total", "value": 5000},
                                {"name": "app_requests_total", "value": 120}],
    "labelValueCountByLabelName": [{"name": "user_id", "value": 5000}, {"name": "route", "value": 20},
                                   {"name": "pod", "value": 6}, {"name": "instance", "value": 3}],
    "memoryInBytesByLabelName": [{"name": "user_id", "value": 35000}],
    "seriesCountByLabelValuePair": [{"name": "job=accounts", "value": 5005}, {"name": "pod=api-0001", "value": 20}],
}


def test_pods_replaced_every_few_scrapes_are_churn_and_pod_is_named():
    verdict = classify(ROLLOUT)
    assert verdict.kind == CHURN and verdict.flagged
    assert verdict.removed_per_hour == pytest.approx(100 * HOUR / 16.5)
    assert [c.label for c in verdict.culprits] == ["pod"]
    assert verdict.culprits[0].reason == "6 values seen over the window, 1 live"
    assert "rollout" in verdict.culprits[0].fix and "sum without (pod)" in verdict.culprits[0].fix


def test_an_id_as_a_label_is_a_stable_explosion_and_the_id_is_named():
    verdict = classify(ACCOUNTS)
    assert verdict.kind == EXPLOSION
    assert [c.label for c in verdict.culprits] == ["user_id"]
    fix = verdict.culprits[0].fix
    assert "labeldrop" in fix and "exemplars" in fix and "top-K" in fix


def test_a_first_scrape_is_created_not_churn():
    """A target new in the window counts its first scrape as created; nothing went, nothing is churn."""
    young = GroupStats("young", live=300, created=300, removed=removed_from(300, 300, None), span_s=60)
    assert young.removed == 0
    assert classify(young).kind == OK


@pytest.mark.parametrize("created, live, before, removed", [
    (120, 20, None, 100),  # the rollout: 6 pods of 20, one live
    (0, 50, 50, 0),        # nothing changed
    (40, 50, 50, 40),      # 40 replaced
    (0, 0, 30, 30),        # the target went away
    (5, 20, 30, 15),
    (3, 50, 40, 0),        # approximate counts never go below 0
])
def test_removed_is_created_less_the_growth_of_live_series(created, live, before, removed):
    assert removed_from(created, live, before) == removed


def test_churn_needs_a_rate_against_live_series_and_an_absolute_floor():
    big = dict(live=100_000, span_s=HOUR, targets=100)
    # A daily rollout of everything: 100k/24 per hour, 0.04 per live series: ok.
    assert classify(GroupStats("daily", created=4200, removed=4200, **big)).kind == OK
    just = round(CHURN_REMOVED_PER_LIVE_HOUR * 100_000)
    assert classify(GroupStats("hourly", created=just, removed=just, **big)).kind == CHURN
    assert classify(GroupStats("under", created=just - 1, removed=just - 1, **big)).kind == OK
    # A tiny target whose 10 series were all replaced: a high ratio, too few to matter.
    tiny = GroupStats("tiny", live=10, created=20, removed=10, span_s=HOUR)
    assert per_hour(tiny.removed, tiny.span_s) < CHURN_MIN_REMOVED_PER_HOUR
    assert classify(tiny).kind == OK


def test_a_rollout_of_targets_names_every_label_that_changed_with_it():
    fleet = GroupStats("api", live=5000, created=10_000, removed=5000, span_s=HOUR, targets=50,
                       labels=labels(instance=(50, 100), pod=(50, 100), version=(1, 2), code=(8, 8)))
    verdict = classify(fleet)
    assert verdict.kind == CHURN
    assert [c.label for c in verdict.culprits] == ["instance", "pod"]  # version lost 1 value: under half of 50


def test_one_value_per_target_is_not_an_id():
    fleet = GroupStats("node", live=2_000_000, created=0, removed=0, span_s=HOUR, targets=2000,
                       labels=labels(instance=(2000, 2000), cpu=(64, 64), mode=(8, 8)))
    assert classify(fleet).kind == OK
    per_target = GroupStats("x", live=ID_LIKE_VALUES, created=0, removed=0, span_s=HOUR, targets=ID_LIKE_VALUES,
                            labels=labels(pod=(ID_LIKE_VALUES, ID_LIKE_VALUES)))
    assert classify(per_target).kind == OK  # one pod per target: a target label


def test_many_series_per_target_without_an_id_is_an_explosion_of_label_products():
    wide = GroupStats("wide", live=SERIES_PER_TARGET_HIGH * 3, created=0, removed=0, span_s=HOUR, targets=3,
                      labels=labels(instance=(3, 3), method=(10, 10), path=(500, 500), le=(20, 20)))
    verdict = classify(wide)
    assert verdict.kind == EXPLOSION
    assert [c.label for c in verdict.culprits] == ["path", "le", "method"]
    assert "route template" in verdict.culprits[0].fix
    assert verdict.culprits[0].reason == "10,000 live series per target"


def test_a_window_too_short_has_no_rates():
    short = GroupStats("s", live=20, created=40, removed=20, span_s=2.0)
    verdict = classify(short)
    assert verdict.kind == UNKNOWN and verdict.removed_per_hour is None and not verdict.flagged
    # An id needs no rate.
    assert classify(GroupStats("s", live=5000, created=5000, removed=0, span_s=2.0,
                               labels=labels(user_id=(5000, 5000)))).kind == EXPLOSION


@pytest.mark.parametrize("label, kind, says", [
    ("version", CHURN, "info metric"),
    ("git_commit", CHURN, "group_left"),
    ("session_started_at", CHURN, "hash or bucket"),
    ("__name__", EXPLOSION, "action: drop on __name__"),
    ("le", EXPLOSION, "native histograms"),
    ("url", EXPLOSION, "route template"),
    ("tenant", EXPLOSION, "FLEETPULSE_METRIC_LABEL_CAP"),
    ("request_id", EXPLOSION, "exemplars"),
    ("pod", CHURN, "recording rule"),
])
def test_each_fix_fits_what_the_label_holds(label, kind, says):
    assert says in suggest_fix(label, kind)


def test_prometheus_report_judges_every_job_and_reads_the_tsdb_status():
    idle = GroupStats("prometheus", live=300, created=300, removed=0, span_s=16.5)
    report = prometheus_report("http://p:9090", HOUR, 16.5, 5135, [idle, ACCOUNTS, ROLLOUT], TSDB_STATUS,
                               {"basis": "own series over 16500ms", "created_per_hour": 1.0, "removed_per_hour": 0.0})
    assert [g["group"] for g in report["groups"]] == ["rollout", "accounts", "prometheus"]  # flagged first
    assert [g["kind"] for g in report["groups"]] == [CHURN, EXPLOSION, OK]
    assert report["kind"] == "churn + stable explosion" and flagged(report)
    assert report["live_series"] == 5320 and report["head_series"] == 5135
    assert report["removed"] == 100 and report["created"] == 5420
    assert [h["label"] for h in report["high_value_labels"]] == ["user_id"]  # instance is a target label
    assert report["tsdb"]["seriesCountByMetricName"][0] == ["app_user_requests_total", 5000]
    text = render(report)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()}
    assert rows["rollout"][:6] == ["rollout", "1", "20", "26.2k/h", "21.8k/h", "churn"]
    assert rows["accounts"][5:8] == ["stable", "explosion", "user_id"]
    assert "pod: 6 values seen over the window, 1 live. Fix:" in text
    assert "own series over 16500ms" in text


def test_a_quiet_prometheus_is_not_flagged():
    quiet = GroupStats("node", live=1200, created=0, removed=0, span_s=HOUR, targets=1,
                       labels=labels(cpu=(8, 8)))
    report = prometheus_report("http://p", HOUR, HOUR, 1200, [quiet], {"headStats": {"numSeries": 1200}})
    assert report["kind"] == OK and not flagged(report)
    assert report["tsdb"]["labelValueCountByLabelName"] == []  # older Prometheus: lists missing


def series(name: str, family: str | None = None, value: float = 1.0, **labels: str) -> Sample:
    return Sample(family or name, name, tuple(sorted(labels.items())), value)


WORKER = [
    series("gen_ai_server_requests_total", "gen_ai_server_requests", model="m", node="n1", status="ok"),
    series("gen_ai_server_requests_total", "gen_ai_server_requests", model="m", node="__other__", status="ok"),
    series("gen_ai_server_requests_total", "gen_ai_server_requests", model="m", node="__other__", status="error"),
    series("fleetpulse_label_values_folded_total", "fleetpulse_label_values_folded", 993.0, label="node"),
    series("fleetpulse_label_values_folded_total", "fleetpulse_label_values_folded", 0.0, label="model"),
    series("fleetpulse_consumer_paused"),
]


def test_worker_report_counts_series_values_and_folds():
    report = exposition_report([(0.0, WORKER)], "http://w/metrics")
    assert report["series"] == 6
    families = {f["name"]: f for f in report["families"]}
    assert families["gen_ai_server_requests"] == {"name": "gen_ai_server_requests", "series": 3,
                                                  "labels": {"model": 1, "node": 2, "status": 2}}
    assert report["families"][0]["name"] == "gen_ai_server_requests"  # most series first
    assert report["labels"]["node"] == {"values": 2, "other_series": 2}
    assert report["labels"]["label"] == {"values": 2, "other_series": 0}
    assert [(f["label"], f["requests"]) for f in report["folded"]] == [("node", 993.0)]  # model folded nothing
    assert report["churn"] is None and "--watch" in report["churn_note"]
    assert report["verdict"]["kind"] == OK and not flagged(report)
    text = render(report)
    assert "node: 993 requests" in text and "--watch" in text


def test_churn_between_reads_is_set_differences():
    a, b, c = series("x", pod="a"), series("x", pod="b"), series("x", pod="c")
    churn = churn_between([(0.0, [a, b]), (10.0, [b, c]), (20.0, [c])])
    assert (churn.created, churn.removed, churn.span_s) == (1, 2, 20.0)
    assert churn.examples == {"created": ['x{pod="c"}'], "removed": ['x{pod="a"}', 'x{pod="b"}']}
    assert churn_between([(0.0, [a])]).span_s == 0.0


def test_worker_watch_reports_churn_per_hour_and_labels_seen():
    reads = [(t, [series("x", pod=f"p{t // 10}"), series("y")]) for t in range(0, 600, 10)]  # a new pod per read
    report = exposition_report(reads)
    churn = report["churn"]
    assert churn["created"] == churn["removed"] == 59 and churn["span_s"] == 590
    assert churn["removed_per_hour"] == pytest.approx(59 * HOUR / 590, abs=0.1)
    verdict = report["verdict"]
    assert verdict["kind"] == CHURN and [c["label"] for c in verdict["culprits"]] == ["pod"]
    assert verdict["culprits"][0]["seen_values"] == 60 and flagged(report)

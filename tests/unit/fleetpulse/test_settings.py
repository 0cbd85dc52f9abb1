"""One settings object from FLEETPULSE_* variables, with clear errors."""

import logging
import re
from pathlib import Path

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.settings import Secret, is_loopback, load_settings, safe_url


def test_defaults_use_local_kafka_and_embedded_chdb():
    s = load_settings(environ={})
    assert s.uses_local_kafka and s.bootstrap == "127.0.0.1:9092"
    assert s.uses_chdb and s.clickhouse_url == "chdb://./.fleetpulse/chdb"
    assert s.http_port == 6066 and s.window_seconds == 10
    assert s.topic("requests") == "fleetpulse.requests"


def test_environment_is_typed():
    s = load_settings(environ={
        "FLEETPULSE_KAFKA_BOOTSTRAP": "kafka-1:9092", "FLEETPULSE_HTTP_PORT": "7000",
        "FLEETPULSE_STORE_RAW_EVENTS": "yes", "FLEETPULSE_BATCH_MAX_WAIT_SECONDS": "0.25",
        "FLEETPULSE_HOME": "~/fp",
    })
    assert not s.uses_local_kafka and s.bootstrap == "kafka-1:9092"
    assert s.http_port == 7000 and s.store_raw_events is True and s.batch_max_wait_seconds == 0.25
    assert s.home == Path("~/fp").expanduser()


def test_password_never_shows():
    s = load_settings(environ={"FLEETPULSE_CLICKHOUSE_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.clickhouse_password)
    assert s.clickhouse_password.reveal() == "hunter2"
    assert isinstance(s.clickhouse_password, Secret)


@pytest.mark.parametrize("env, message", [
    ({"FLEETPULSE_HTTP_PORT": "abc"}, "FLEETPULSE_HTTP_PORT='abc' is not a valid int"),
    ({"FLEETPULSE_WINDOW_SECONDS": "0"}, "FLEETPULSE_WINDOW_SECONDS must be > 0"),
    ({"FLEETPULSE_STORE_RAW_EVENTS": "maybe"}, "expected true/false"),
    ({"FLEETPULSE_CLICKHOUSE_URL": "tcp://x:9000"}, "expected chdb://PATH, http://HOST:PORT"),
    ({"FLEETPULSE_CLICKHOUSE_DATABASE": "a-b"}, "letters, digits and _ only"),
    ({"FLEETPULSE_LOG_LEVEL": "loud"}, "use debug, info, warning or error"),
    ({"FLEETPULSE_HTTP_PORT": "70000"}, "is not a TCP port"),
    ({"FLEETPULSE_CLICKHOUSE_URL": "chdb://"}, "needs a path"),
    ({"FLEETPULSE_CLICKHOUSE_URL": "http://"}, "needs a host"),
    ({"FLEETPULSE_TOPIC_PREFIX": "a b"}, "FLEETPULSE_TOPIC_PREFIX"),
    ({"FLEETPULSE_BATCH_MAX_WAIT_SECONDS": "-1"}, "FLEETPULSE_BATCH_MAX_WAIT_SECONDS must be > 0"),
])
def test_bad_values_say_which_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_to_environ_round_trips():
    s = load_settings(environ={"FLEETPULSE_CLICKHOUSE_PASSWORD": "pw", "FLEETPULSE_STORE_RAW_EVENTS": "1",
                               "FLEETPULSE_KAFKA_PORT": "19999"})
    assert load_settings(environ=s.to_environ()) == s


def test_readme_documents_every_setting():
    import dataclasses
    from pathlib import Path

    from fleetpulse.settings import Settings

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    missing = [f.name for f in dataclasses.fields(Settings) if f"`FLEETPULSE_{f.name.upper()}`" not in readme]
    assert missing == [], f"README's settings table lacks {missing}"


@pytest.mark.parametrize("env, message", [
    ({"FLEETPULSE_BATCH_MAX_WAIT_SECONDS": "nan"}, "FLEETPULSE_BATCH_MAX_WAIT_SECONDS='nan' is not a valid float: expected a finite number"),
    ({"FLEETPULSE_DRIFT_ALPHA": "-inf"}, "expected a finite number"),
    ({"FLEETPULSE_HISTOGRAM_BUCKETS": "0.1,,1"}, "comma-separated seconds"),
    ({"FLEETPULSE_HISTOGRAM_BUCKETS": "0.1,inf"}, "finite number of seconds > 0"),
    ({"FLEETPULSE_HISTOGRAM_BUCKETS": "0,1"}, "finite number of seconds > 0"),
    ({"FLEETPULSE_HISTOGRAM_BUCKETS": "1,1"}, "must increase"),
    ({"FLEETPULSE_QUERY_TIMEOUT_SECONDS": "0"}, "FLEETPULSE_QUERY_TIMEOUT_SECONDS must be > 0"),
    ({"FLEETPULSE_ALERT_WEBHOOK_URL": "file:///etc/passwd"}, "expected http(s)://HOST"),
    ({"FLEETPULSE_DRIFT_WEBHOOK_URL": "file:///etc/passwd"}, "expected http(s)://HOST"),
])
def test_non_finite_and_malformed_values_are_refused(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ=env)


def test_the_old_webhook_name_still_works_and_says_which_name_to_use(caplog):
    with caplog.at_level(logging.WARNING, logger="fleetpulse.settings"):
        s = load_settings(environ={"FLEETPULSE_DRIFT_WEBHOOK_URL": "http://hook.example/x"})
    assert s.alert_webhook_url == "http://hook.example/x"
    assert [r.getMessage() for r in caplog.records] == [
        "FLEETPULSE_DRIFT_WEBHOOK_URL is deprecated; use FLEETPULSE_ALERT_WEBHOOK_URL "
        "(it receives every alert, not only drift)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fleetpulse.settings"):
        s = load_settings(environ={"FLEETPULSE_DRIFT_WEBHOOK_URL": "http://old.example/x",
                                   "FLEETPULSE_ALERT_WEBHOOK_URL": "http://new.example/x"})
    assert s.alert_webhook_url == "http://new.example/x"
    assert "deprecated and ignored because FLEETPULSE_ALERT_WEBHOOK_URL is set" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fleetpulse.settings"):
        load_settings(environ={"FLEETPULSE_ALERT_WEBHOOK_URL": "http://new.example/x"})
    assert caplog.records == []


def test_home_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "home").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        load_settings(environ={"FLEETPULSE_HOME": str(tmp_path / "home")})


@pytest.mark.parametrize("url, shown", [
    ("http://admin:hunter2@am.example:9093/api/v2/alerts?token=abc", "http://am.example:9093"),
    ("https://hooks.example/T000/B000/XXXX", "https://hooks.example"),
    ("http://[::1]:8080/x", "http://[::1]:8080"),
    ("http://admin:hunter2@", "<URL without a host>"),
    ("http://host:99999999", "<unparsable URL>"),
])
def test_urls_in_logs_show_scheme_and_host_only(url, shown):
    assert safe_url(url) == shown


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("worker.example", False),
])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_list_settings_are_checked_at_load_with_the_setting_named():
    assert load_settings(environ={"FLEETPULSE_METRIC_LABELS": " node , ,model"}).metric_label_names == ["node", "model"]
    with pytest.raises(ConfigError, match=r"FLEETPULSE_METRIC_LABELS='model,user_id': \['user_id'\] not allowed"):
        load_settings(environ={"FLEETPULSE_METRIC_LABELS": "model,user_id"})
    with pytest.raises(ConfigError, match=r"FLEETPULSE_DRIFT_FEATURES: unknown \['latncy'\]"):
        load_settings(environ={"FLEETPULSE_DRIFT_FEATURES": "latency,latncy"})
    with pytest.raises(ConfigError, match="FLEETPULSE_DRIFT_REFERENCE: 'basline' is not previous"):
        load_settings(environ={"FLEETPULSE_DRIFT_REFERENCE": "previous,m=basline"})
    settings = load_settings(environ={"FLEETPULSE_DRIFT_REFERENCE": "previous,llama=baseline"})
    assert settings.drift_reference_of("llama") == "baseline" and settings.drift_reference_of("other") == "previous"

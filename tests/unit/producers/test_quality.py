"""Quality signals from a response's text: derived on the node, only numbers on the wire."""

from __future__ import annotations

import orjson
import pytest

from fleetpulse.errors import ValidationError
from fleetpulse.producers.envelope import event_from_record
from fleetpulse.producers.quality import Analyser, analyse, format_ok, repetition
from fleetpulse.schemas import decode_message, validate_event
from tests.unit.producers.test_recorder import record


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't share that.", "Lo siento, pero no puedo hacerlo.", "Désolé, mais je ne peux pas.",
    "Es tut mir leid, aber ich kann das nicht.", "抱歉，我无法回答这个问题。", "申し訳ありませんが、お答えできません。",
])
def test_refusals_in_six_languages(text):
    assert analyse(text)["fleetpulse.output.refusal"] == 1


def test_answers_and_content_filter():
    assert analyse("Paris is the capital of France.")["fleetpulse.output.refusal"] == 0
    assert analyse("Paris.", ["content_filter"])["fleetpulse.output.refusal"] == 1
    assert Analyser(["nope"]).signals("NOPE, not today")["fleetpulse.output.refusal"] == 1
    assert Analyser(["nope"]).signals("I cannot help with that")["fleetpulse.output.refusal"] == 0


def test_empty_and_repetition():
    assert analyse("  \n\t")["fleetpulse.output.empty"] == 1 and analyse("")["fleetpulse.output.empty"] == 1
    assert analyse("ok")["fleetpulse.output.empty"] == 0
    assert repetition("one two three four five") == 0.0
    # 8 words: 6 trigrams, of which "a b c" thrice and "b c a", "c a b" twice: 4 distinct -> 2/6... exact:
    words = "a b c a b c a b".split()
    trigrams = list(zip(words, words[1:], words[2:]))
    assert repetition(" ".join(words)) == (len(trigrams) - len(set(trigrams))) / len(trigrams) == 0.5
    assert repetition("loop " * 100) == pytest.approx(97 / 98)
    assert repetition("") == 0.0 and repetition("A b C a B c") == 0.25


def test_format_compliance():
    assert format_ok('{"a": [1, 2]}', "json") and format_ok('```json\n{"a": 1}\n```', "JSON")
    assert not format_ok('{"a": ', "json") and not format_ok("Sure! here it is", "json")
    assert "fleetpulse.output.format_ok" not in analyse("{}")
    assert analyse("{}", expect_format="json")["fleetpulse.output.format_ok"] == 1


def test_the_text_never_reaches_the_wire_only_its_signals_do():
    secret = "I'm sorry, but I can't reveal the launch codes 12345. launch codes launch codes launch codes"
    event = event_from_record(record(text=secret, expect_format="json", finish_reasons=["length"],
                                     cache_read_tokens=7), "a" * 32, "b" * 32)
    wire = orjson.dumps(event)
    assert b"launch" not in wire and b"sorry" not in wire
    validate_event(event, "request")
    decoded = decode_message(wire, "request", 1 << 20).events[0]
    assert decoded["fleetpulse.output.refusal"] == 1 and decoded["fleetpulse.output.empty"] == 0
    assert decoded["fleetpulse.output.format_ok"] == 0 and decoded["gen_ai.usage.cache_read.input_tokens"] == 7
    assert 0 < decoded["fleetpulse.output.repetition"] < 1


def test_no_text_no_signals_and_old_events_stay_valid():
    event = event_from_record(record(), "a" * 32, "b" * 32)
    assert not any(k.startswith("fleetpulse.output.") for k in event)
    validate_event(event, "request")


@pytest.mark.parametrize("field,value", [("fleetpulse.output.refusal", True), ("fleetpulse.output.refusal", 2),
                                         ("fleetpulse.output.repetition", 1.5), ("fleetpulse.output.empty", -1)])
def test_flags_are_integers_0_or_1(field, value):
    event = event_from_record(record(), "a" * 32, "b" * 32)
    with pytest.raises(ValidationError):
        validate_event({**event, field: value}, "request")


def test_the_recorder_carries_the_text_and_refuses_an_unknown_format_on_the_callers_thread():
    from fleetpulse.producers.recorder import Recorder
    recorder = Recorder("127.0.0.1:1", "t", linger_s=60)
    try:
        assert recorder.record_request("m", "n", 0.1, text="hi", expect_format="json", cache_read_tokens=3)
        with recorder.time_request("m", "n", expect_format="json") as req:
            req.text = '{"ok": true}'
        with pytest.raises(ValueError, match="xml"):
            recorder.record_request("m", "n", 0.1, text="<a/>", expect_format="xml")
        queued = list(recorder._buffer)
        assert [q[15:18] for q in queued] == [("hi", "json", 3), ('{"ok": true}', "json", None)]
        assert event_from_record(queued[1], "a", "b")["fleetpulse.output.format_ok"] == 1
    finally:
        recorder._buffer.clear()
        recorder.close(timeout=0.1)

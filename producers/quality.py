"""Output quality signals derived from a response's text, on the node (pure).

The Recorder's background thread calls :func:`analyse` on the text the caller
handed over, and only the numbers it returns go on the wire
(``fleetpulse.output.*``, docs/quality.md): the text itself is dropped right
after, and never leaves the process.

- refusal: the text contains one of ``REFUSAL_PHRASES`` (case-folded, in
  English, Spanish, French, German, Chinese and Japanese; replaceable), or a
  finish reason is ``content_filter``;
- empty: the text is blank (empty or whitespace only);
- repetition: the share of the text's word trigrams that repeat an earlier
  trigram of the same text, 0..1 (0 for fewer than two trigrams);
- format_ok: 1 when the text parses in the expected format (``"json"``), 0 when
  not; absent when no format was asked for (the Recorder refuses a format not
  in ``FORMATS`` on the caller's thread).

Truncation needs no text: it is the ``length`` finish reason, which the event
already carries (``gen_ai.response.finish_reasons``).
"""

from __future__ import annotations

import re
from typing import Iterable

import orjson

#: Phrases that mark a refusal, lower case. Matching is a substring search on
#: the case-folded text, so a phrase should be specific enough not to occur in
#: an ordinary answer.
REFUSAL_PHRASES: tuple[str, ...] = (
    # English
    "i can't help with", "i cannot help with", "i can't assist with", "i cannot assist with",
    "i'm sorry, but i can't", "i'm sorry, but i cannot", "i am unable to", "i'm unable to",
    "i won't be able to", "i must decline", "as an ai language model, i cannot",
    # Spanish
    "no puedo ayudar con", "no puedo ayudarte con", "lo siento, pero no puedo", "no puedo cumplir",
    # French
    "je ne peux pas vous aider", "je ne peux pas aider", "désolé, mais je ne peux pas", "je ne suis pas en mesure de",
    # German
    "ich kann dabei nicht helfen", "ich kann ihnen dabei nicht helfen", "es tut mir leid, aber ich kann",
    "ich bin nicht in der lage",
    # Chinese
    "我不能帮助", "我无法帮助", "抱歉，我不能", "抱歉，我无法", "我无法提供",
    # Japanese
    "お手伝いできません", "申し訳ありませんが", "お答えできません", "対応できません",
)

FORMATS = ("json",)
_WORDS = re.compile(r"\w+")


class Analyser:
    """:func:`analyse` with a phrase list of one's own (lower-cased here)."""

    __slots__ = ("phrases",)

    def __init__(self, phrases: Iterable[str] = REFUSAL_PHRASES):
        self.phrases = tuple(p.casefold() for p in phrases if p)

    def refused(self, text: str | None, finish_reasons: Iterable[str] | None) -> bool:
        if finish_reasons and "content_filter" in finish_reasons:
            return True
        if not text:
            return False
        folded = text.casefold()
        return any(p in folded for p in self.phrases)

    def signals(self, text: str | None, finish_reasons: Iterable[str] | None = None,
                expect_format: str | None = None) -> dict:
        """The wire fields for one response (see the module docstring)."""
        text = text or ""
        out = {
            "fleetpulse.output.refusal": int(self.refused(text, finish_reasons)),
            "fleetpulse.output.empty": int(not text.strip()),
            "fleetpulse.output.repetition": repetition(text),
        }
        if expect_format is not None and expect_format.lower() in FORMATS:
            out["fleetpulse.output.format_ok"] = int(format_ok(text, expect_format))
        return out


def repetition(text: str) -> float:
    """Share of word trigrams (case-folded) that repeat an earlier trigram: (n - distinct) / n."""
    words = _WORDS.findall(text.casefold())
    n = len(words) - 2
    if n < 2:
        return 0.0
    distinct = len(set(zip(words, words[1:], words[2:])))
    return (n - distinct) / n


def format_ok(text: str, expect_format: str) -> bool:
    """Whether ``text`` parses as ``expect_format`` (only "json" so far; a
    Markdown code fence around the JSON is allowed, as chat models add one)."""
    kind = expect_format.lower()
    if kind != "json":
        raise ValueError(f"expected format {expect_format!r}: not one of {FORMATS}")
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        body = body[4:] if body[:4].lower() == "json" else body
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


DEFAULT = Analyser()


def analyse(text: str | None, finish_reasons: Iterable[str] | None = None, expect_format: str | None = None) -> dict:
    """The quality fields of one response with the default phrase list."""
    return DEFAULT.signals(text, finish_reasons, expect_format)

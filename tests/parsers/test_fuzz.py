"""Every registered parser, fed anything: it never raises, and every record read is accounted for."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleuth import parsers
from sleuth.config import Config

CONFIG = Config()
PARSERS = sorted(parsers.REGISTRY)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)


def accounted(name: str, data: bytes) -> None:
    frames, results = parsers.REGISTRY[name].parse_many([(data, "fuzz-a"), (data, "fuzz-b")], CONFIG)
    for result in results:  # parsers keep or skip; duplicates are decided later, across inputs
        assert result.read == result.kept + sum(result.skipped.values())
    rows = sum(len(frames[f]) for f in frames if f != "finding_entities")
    assert rows == sum(r.kept for r in results)


@pytest.mark.parametrize("name", PARSERS)
@FUZZ
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes(name, data):
    accounted(name, data)


@pytest.mark.parametrize("name", PARSERS)
@FUZZ
@given(document=_json, lines=st.booleans())
def test_arbitrary_json(name, document, lines):
    if lines and isinstance(document, list):
        data = "\n".join(json.dumps(item) for item in document).encode()
    else:
        data = json.dumps(document).encode()
    accounted(name, data)


@pytest.mark.parametrize("name", PARSERS)
@FUZZ
@given(text=st.text(max_size=2000))
def test_arbitrary_text_lines(name, text):
    accounted(name, text.encode())

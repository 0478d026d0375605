"""Protocol v1.1 text rules (mdm/text.py): what PostgreSQL cannot hold is never called clean."""

import json

from django.db import DataError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm import text


def test_it_names_a_nul():
    assert text.problem("a\x00b", "wifi_ssid") == "wifi_ssid: must not contain NUL."


def test_it_names_a_lone_surrogate_from_a_json_escape():
    value = json.loads('"x\\ud800y"')
    assert text.problem(value, "model") == "model: must not contain a lone surrogate."


def test_a_paired_surrogate_escape_is_one_code_point_and_clean():
    value = json.loads('"\\ud83d\\ude00"')
    assert value == "\U0001f600"
    assert text.problem(value, "model") is None


def test_lengths_are_the_protocols_in_code_points():
    assert text.problem("é" * 128, "hardware_id") is None
    assert text.problem("é" * 129, "hardware_id") == "hardware_id: at most 128 characters."
    assert text.problem("x" * 4096, "fcm_token") is None
    assert text.problem("x" * 257, "serial") == "serial: at most 256 characters."
    assert text.problem("x" * 20, "ssid", max_len=10) == "ssid: at most 10 characters."


def test_non_text_is_a_problem():
    assert text.problem(5, "model") == "model: must be text."


def test_loggable_escapes_and_caps():
    assert text.loggable("a\x00b\ud800") == "a\\u0000b\\ud800"
    assert text.loggable("x" * 300, limit=5) == "xxxxx…"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(value=st.recursive(st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                          max_leaves=12))
def test_clean_deep_agrees_with_what_postgresql_jsonb_refuses(db, value):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT %s::jsonb", [json.dumps(value)])
        stored = True
    except DataError:
        stored = False
    assert text.clean_deep(value) is stored


@given(st.text())
def test_problem_is_none_exactly_for_clean_short_text(value):
    clean = "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value) and len(value) <= 256
    assert (text.problem(value, "model") is None) is clean

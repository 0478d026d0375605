"""mdm.deadletters.isolate: a batch write that PostgreSQL refuses because of some entries lands
everything else and names exactly those entries; other failures are not the entries' fault."""

import pytest
from django.db import OperationalError, ProgrammingError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm import deadletters

pytestmark = pytest.mark.django_db


@pytest.fixture
def table(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE isolate_probe (v smallint, t text) ON COMMIT DROP")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS isolate_probe")


def insert(batch):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO isolate_probe SELECT * FROM unnest(%s::int[], %s::text[]) RETURNING v",
                       [[v for v, _ in batch], [t for _, t in batch]])
        return [row[0] for row in cursor.fetchall()]


def stored() -> list:
    with connection.cursor() as cursor:
        cursor.execute("SELECT v FROM isolate_probe ORDER BY v")
        return [row[0] for row in cursor.fetchall()]


def acceptable(item) -> bool:
    v, t = item
    return -(2**15) <= v < 2**15 and "\x00" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(st.integers(-(2**16), 2**16), st.sampled_from(["ok", "a\x00b", "x\ud800", ""])), max_size=40))
def test_isolate_writes_exactly_the_acceptable_entries_and_names_the_rest(table, items):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM isolate_probe")
    with transaction.atomic():
        written, bad = deadletters.isolate(items, insert)
    assert sorted(written) == sorted(v for v, t in items if acceptable((v, t)))
    assert stored() == sorted(written)
    assert sorted(item for item, _ in bad) == sorted(item for item in items if not acceptable(item))
    assert all(deadletters.entry_fault(exc) for _, exc in bad)


def test_write_isolating_needs_no_savepoint_when_nothing_is_wrong(table, django_assert_num_queries):
    with django_assert_num_queries(3):  # the block's savepoint (inside the test's transaction), the INSERT, release
        written, bad = deadletters.write_isolating(lambda isolate: isolate([(1, "a"), (2, "b")], insert))
    assert (sorted(written), bad) == ([1, 2], [])


def test_write_isolating_runs_again_with_isolation_after_an_entrys_fault(table):
    written, bad = deadletters.write_isolating(lambda isolate: isolate([(1, "a"), (99999, "b"), (3, "c")], insert))
    assert sorted(written) == [1, 3] and [item for item, _ in bad] == [(99999, "b")]
    assert stored() == [1, 3]


def test_a_program_limit_is_an_entrys_fault_and_an_outage_is_not():
    with pytest.raises(OperationalError) as limit, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT repeat('x', 1100000000)")  # 54000: requested length too large
    assert deadletters.entry_fault(limit.value)
    assert not deadletters.entry_fault(OperationalError("server closed the connection unexpectedly"))
    assert not deadletters.entry_fault(ProgrammingError("column does not exist"))


def test_an_error_that_is_no_entrys_fault_propagates_and_nothing_is_set_aside(table):
    def broken(batch):
        raise ProgrammingError("column v2 does not exist")

    with pytest.raises(ProgrammingError):
        deadletters.write_isolating(lambda isolate: isolate([(1, "a")], broken))

"""Claiming per-device seqs rewrites a row per target device; the device table leaves room in its
pages (devices migration 0002) so PostgreSQL updates those rows in place (HOT) instead of writing
an entry in each of the table's eleven indexes."""

import pytest
from django.db import connection

from commands import services
from devices.models import Device

pytestmark = pytest.mark.django_db


def hot_updates_in_this_transaction() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'devices_device'")
        return cursor.fetchone()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL storage parameter")
def test_most_seq_claims_of_a_fan_out_are_heap_only_updates():
    Device.objects.bulk_create(
        [Device(hardware_id=f"HOT-{i}", model="m", manufacturer="x", token_id=f"hot{i}", token_hash="x") for i in range(300)]
    )
    before_all, before_hot = hot_updates_in_this_transaction()
    services.issue_command(actor=None, type="ping", params={}, target={"all": True})
    updated, hot = (a - b for a, b in zip(hot_updates_in_this_transaction(), (before_all, before_hot)))
    assert updated == 300
    assert hot >= 0.9 * updated, f"{hot} of {updated} seq claims were HOT"

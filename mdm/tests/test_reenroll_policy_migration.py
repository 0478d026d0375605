"""mdm migration 0002 (PROTOCOL.md v1.1): an installation still on the old default `allowed`
moves to `approval`, with an audit record saying why; an admin's deliberate `allowed` stays."""

import importlib

import pytest
from django.apps import apps

from mdm.models import AuditEvent, FleetSettings

pytestmark = pytest.mark.django_db
migration = importlib.import_module("mdm.migrations.0002_reenroll_policy_approval")


def _run():
    migration.approval_unless_chosen(apps, None)
    FleetSettings.forget_cached()
    return FleetSettings.objects.get(pk=1).reenroll_policy


def test_the_old_default_becomes_approval_and_says_why():
    FleetSettings.objects.create(pk=1, reenroll_policy="allowed")
    assert _run() == "approval"
    event = AuditEvent.objects.get(action="fleet_settings.update")
    assert event.actor_label == "system" and event.data["reenroll_policy"] == {"from": "allowed", "to": "approval"}
    assert "v1.1" in event.data["reason"]


def test_an_admins_deliberate_allowed_is_kept(admin_user):
    from mdm.services import update_fleet_settings

    FleetSettings.objects.create(pk=1, reenroll_policy="approval")
    update_fleet_settings(actor=admin_user, reenroll_policy="allowed")
    update_fleet_settings(actor=admin_user, heartbeat_interval_s=20)  # a later change of something else
    assert _run() == "allowed"
    assert AuditEvent.objects.filter(actor_label="system").count() == 0


def test_allowed_again_after_a_change_back_is_the_default_and_switched(admin_user):
    from mdm.services import update_fleet_settings

    FleetSettings.objects.create(pk=1, reenroll_policy="allowed")
    update_fleet_settings(actor=admin_user, reenroll_policy="approval")
    FleetSettings.objects.filter(pk=1).update(reenroll_policy="allowed")  # e.g. edited in the database
    assert _run() == "approval"


def test_approval_is_left_alone():
    FleetSettings.objects.create(pk=1, reenroll_policy="approval")
    assert _run() == "approval"
    assert not AuditEvent.objects.exists()

"""A target's group or tag name with a NUL or a lone surrogate is a 400 naming the target, not a
PostgreSQL error (a 500): commands.targeting checks it for every caller (commands, policies)."""

import pytest

from commands.models import Command
from commands.policies import services as policies
from commands.policies.models import PolicyAssignment

pytestmark = pytest.mark.django_db
TARGETS = ['{"group": "lobby\\u0000"}', '{"group": "lobby\\ud800"}', '{"tags": ["front\\u0000"]}', '{"tags": ["front\\udfff"]}']


@pytest.mark.parametrize("target", TARGETS)
def test_a_command_target_with_a_forbidden_character_is_a_400(admin_api, target):
    response = admin_api.post("/api/v1/commands", data='{"type": "ping", "target": %s}' % target, content_type="application/json")
    assert response.status_code == 400 and "target" in response.content.decode() and not Command.objects.exists()


@pytest.mark.parametrize("target", TARGETS)
def test_a_policy_assignment_with_a_forbidden_character_is_a_400(admin_api, admin_user, target):
    policy = policies.create_policy(actor=admin_user, name="k", items={})
    for dry_run in ("true", "false"):
        response = admin_api.post(f"/api/v1/policies/{policy.pk}/assign", content_type="application/json",
                                  data='{"target": %s, "dry_run": %s}' % (target, dry_run))
        assert response.status_code == 400 and "target" in response.content.decode()
    assert not PolicyAssignment.objects.exists()

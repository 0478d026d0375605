"""Every key this deployment writes to Redis starts with CACHE_PREFIX, so two deployments (or two
test runs) sharing one Redis never touch each other's state (found when concurrent test runs
stole each other's live-update and registration-queue keys)."""

from django.conf import settings

from commands import markers
from devices import live, writebehind
from enrollment import admission


def test_the_projects_own_redis_keys_carry_the_deployment_prefix():
    keys = [live.DIRTY_KEY, live.PENDING_KEY, admission.KEY, markers.key("d"), writebehind.state_key("d")]
    assert all(k.startswith(f"{settings.CACHE_PREFIX}:") for k in keys), keys

"""State changes of the enrollment app (docs/ARCHITECTURE.md: the only place that changes state),
one module per entity: `keys`, `enroll` (POST /api/v1/enroll), `reenroll` (v1.1 re-enrollment requests),
`presets`. New callers import from the module that owns the function; the names below keep the
callers that predate the split (`from enrollment import services`) working."""

from enrollment.services.enroll import Enrolled, EnrollRefused, count_enrollment, enroll_device
from enrollment.services.keys import NewKey, create_enrollment_key, expires_in_days, revoke_enrollment_key
from enrollment.services.presets import delete_preset, save_bloatware_preset, save_tweak_preset
from enrollment.services.reenroll import (
    ReenrollDecisionRefused,
    approve_reenroll_request,
    deny_reenroll_request,
)

__all__ = [
    "EnrollRefused",
    "Enrolled",
    "NewKey",
    "ReenrollDecisionRefused",
    "approve_reenroll_request",
    "count_enrollment",
    "create_enrollment_key",
    "delete_preset",
    "deny_reenroll_request",
    "enroll_device",
    "expires_in_days",
    "revoke_enrollment_key",
    "save_bloatware_preset",
    "save_tweak_preset",
]

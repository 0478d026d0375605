"""State changes of the commands app (docs/ARCHITECTURE.md: the only place that changes state),
one module per concern:

- `keys`: command signing keys, their rotation and promotion;
- `issuing`: validating, targeting and writing a command and its deliveries;
- `delivery`: the pull path (a heartbeat's commands part, GET /device/commands);
- `push`: dispatch by FCM;
- `reports`: a device's result reports;
- `lifecycle`: cancel, expiry, a device re-enrolled, deleted or purged;
- `retry`: a command issued again to the devices that failed it;
- `shell_allowlist`, `presets`, `wifi_configs`: what operators keep for reuse.

Every delivery transition is a conditional update on `state` (`filter(pk=..., state__in=...)
.update(...)`), so duplicates, retries and late reports never move a delivery backwards and the
first final state wins. Side effects (dispatch, markers, live updates, metrics) run on commit.

Callers outside this package use `from commands import services` and the names below; modules
inside it import each other from the owning module (never from this one), so that importing one
never needs the whole package first."""

from commands.selectors import counters_for
from commands.services.delivery import (
    CANCELLED_LIMIT,
    EMPTY_ANSWER,
    HEARTBEAT_LIMIT,
    PULL_LIMIT_MAX,
    UNREAD,
    heartbeat_answer,
    pull_commands,
)
from commands.services.issuing import (
    IDEMPOTENCY_WINDOW,
    MAX_EXPIRES_IN_S,
    IdempotencyConflict,
    Issued,
    issue_command,
    prepare_command,
    preview_command,
    request_fingerprint,
    split_params,
)
from commands.services.keys import (
    KEY_LEAD,
    create_enrollment_keys,
    ensure_device_keys,
    keyset,
    promote_due_keys,
    start_key_rotation,
)
from commands.services.lifecycle import (
    STUCK_GRACE,
    cancel_command,
    cancel_device_deliveries,
    expire_deliveries,
    purge_device_rows,
)
from commands.services.presets import archive_preset, create_preset, update_preset
from commands.services.push import (
    CLAIM_STALE,
    DISPATCH_PARALLEL,
    MAX_PUSH_ATTEMPTS,
    RETRYABLE,
    PushReport,
    push_backoff_s,
    push_command,
    stalled_push_commands,
)
from commands.services.reports import (
    MAX_ERROR_CHARS,
    MAX_OUTPUT_BYTES,
    Reported,
    final_fields,
    flush_results,
    record_result,
    report_result,
    truncate_utf8,
)
from commands.services.retry import retry_failed
from commands.services.shell_allowlist import (
    SHELL_INTERPRETERS,
    create_allow_rule,
    delete_allow_rule,
    update_allow_rule,
)
from commands.services.wifi_configs import (
    create_wifi_config,
    delete_wifi_config,
    push_wifi_config,
    update_wifi_config,
)

__all__ = [
    # keys
    "KEY_LEAD",
    "create_enrollment_keys",
    "ensure_device_keys",
    "keyset",
    "promote_due_keys",
    "start_key_rotation",
    # issuing
    "IDEMPOTENCY_WINDOW",
    "MAX_EXPIRES_IN_S",
    "IdempotencyConflict",
    "Issued",
    "issue_command",
    "prepare_command",
    "preview_command",
    "request_fingerprint",
    "split_params",
    # delivery (the pull path)
    "CANCELLED_LIMIT",
    "EMPTY_ANSWER",
    "HEARTBEAT_LIMIT",
    "PULL_LIMIT_MAX",
    "UNREAD",
    "heartbeat_answer",
    "pull_commands",
    # push
    "CLAIM_STALE",
    "DISPATCH_PARALLEL",
    "MAX_PUSH_ATTEMPTS",
    "RETRYABLE",
    "PushReport",
    "push_backoff_s",
    "push_command",
    "stalled_push_commands",
    # reports
    "MAX_ERROR_CHARS",
    "MAX_OUTPUT_BYTES",
    "Reported",
    "final_fields",
    "flush_results",
    "record_result",
    "report_result",
    "truncate_utf8",
    # lifecycle
    "STUCK_GRACE",
    "cancel_command",
    "cancel_device_deliveries",
    "expire_deliveries",
    "purge_device_rows",
    # retry
    "retry_failed",
    # what operators keep for reuse
    "SHELL_INTERPRETERS",
    "archive_preset",
    "create_allow_rule",
    "create_preset",
    "create_wifi_config",
    "delete_allow_rule",
    "delete_wifi_config",
    "push_wifi_config",
    "update_allow_rule",
    "update_preset",
    "update_wifi_config",
    # a read (commands.selectors owns it), kept here for the callers that predate the split
    "counters_for",
]

"""The device policy channel (PROTOCOL.md v1.1, docs/policies.md): named, versioned documents of
desired state, assigned to devices, signed with the devices' command keys and served on the pull
path (GET /api/v1/device/policy). It lives in commands/ because it is signed with the per-device
command keys, carries the Wi-Fi configs and the shell allowlist that commands owns, and reaches
devices by the same push (`{"kind": "sync"}`) and pull.

- `models`: Policy, PolicyVersion (the version number is its primary key), PolicyAssignment;
- `items`: validation of the items and their rendering for the device;
- `resolve`: which policy each device has, and the reconciliation after every change;
- `cache`: the device's current version in Redis for the heartbeat answer;
- `services`: every state change (create, update, assign, a device's report);
- `device_api`, `api`: the device endpoints and the admin API.
"""

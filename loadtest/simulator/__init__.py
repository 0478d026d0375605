"""Fleet simulator: thousands of simulated Android agents in one asyncio process, speaking
PROTOCOL.md exactly as a device does (enroll with backoff, heartbeat with drifting telemetry and
jitter, pull, verify every envelope, execute commands and report results, consume pushes from the
FCM stand-in, download and install APKs, and PROTOCOL.md v1.1's policy channel: fetch, verify,
apply to a simulated Device Owner, report). Operators use it to size and smoke-test a deployment;
the benchmarks drive the server with it. It shares no code with the server on purpose: it is an
independent implementation of the device side, so a server that drifts from the protocol fails it.

Modules: `protocol` (envelope and policy verification, backoff), `stats`, `device` (one device's state),
`fleet` (the Fleet: HTTP, enrollment, heartbeats), `commands` (verify, order, execute, report),
`push` (the FCM stand-in's feed), `download` and `installer` (install_apk for real), `policy` (the
policy channel), `applier` (a policy's items applied, as the agent's PolicyApplier) and `owner`
(the Device Owner state and what it allows). The names
below are the public ones; import them from here.
"""

from loadtest.simulator.applier import ITEMS as POLICY_ITEMS
from loadtest.simulator.applier import apply_items
from loadtest.simulator.commands import EXECUTION
from loadtest.simulator.device import APPS, NETWORKS, SimDevice
from loadtest.simulator.download import DownloadFailed, Downloader, Transfer
from loadtest.simulator.fleet import GC_THRESHOLDS, REFUSED_RETRY_S, Fleet, settle_gc
from loadtest.simulator.installer import ApkInstaller, ApkSpec
from loadtest.simulator.owner import DeviceOwner, PolicyRecord
from loadtest.simulator.protocol import (
    FINAL,
    GRACE_S,
    MAX_LIFETIME_S,
    SEEN_FORGET_AFTER_S,
    BadEnvelope,
    PolicyForAnotherDevice,
    Rejected,
    backoff_delay,
    retry_after_of,
    verify_envelope,
    verify_policy,
)
from loadtest.simulator.stats import Stats, format_report, percentile

__all__ = [
    "APPS", "EXECUTION", "FINAL", "GC_THRESHOLDS", "GRACE_S", "MAX_LIFETIME_S", "NETWORKS", "POLICY_ITEMS",
    "REFUSED_RETRY_S", "SEEN_FORGET_AFTER_S", "ApkInstaller", "ApkSpec", "BadEnvelope", "DeviceOwner", "DownloadFailed",
    "Downloader", "Fleet", "PolicyForAnotherDevice", "PolicyRecord", "Rejected", "SimDevice", "Stats", "Transfer",
    "apply_items", "backoff_delay", "format_report", "percentile", "retry_after_of", "settle_gc", "verify_envelope",
    "verify_policy",
]

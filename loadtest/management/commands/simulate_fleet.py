import asyncio
import json
import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from loadtest.simulator import Fleet, format_report


class Command(BaseCommand):
    help = (
        "Simulate a fleet of Android agents against a server (PROTOCOL.md v1): enroll, heartbeat, pull and "
        "push commands, verify envelopes, execute (install_apk for real: download, check, install) and report. "
        "Prints latency percentiles per endpoint, errors by status and command counters."
    )

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=int, default=100)
        parser.add_argument("--interval", type=float, default=None, help="heartbeat interval in seconds (default: the server's)")
        parser.add_argument("--duration", type=float, default=60.0, help="seconds to run after enrolling")
        parser.add_argument("--base-url", default=settings.PUBLIC_BASE_URL)
        parser.add_argument("--enroll-key", default=os.environ.get("MDM_ENROLL_KEY", ""), help="or MDM_ENROLL_KEY")
        parser.add_argument("--hardware-prefix", default="sim", help="hardware ids are <prefix>-000001 ...")
        parser.add_argument("--push-url", default=None, help="FCM stand-in base URL to consume pushes from")
        parser.add_argument("--failure-rate", type=float, default=None, help="override simulated failure probability")
        parser.add_argument("--exec-scale", type=float, default=1.0, help="multiply simulated execution times")
        parser.add_argument("--enroll-concurrency", type=int, default=200)
        parser.add_argument("--download-cut-rate", type=float, default=0.0,
                            help="fraction of APK downloads cut once mid-transfer, then resumed with Range")
        parser.add_argument("--download-concurrency", type=int, default=200, help="APK transfers at once (0: no cap)")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **o):
        if not o["enroll_key"]:
            raise CommandError("an enrollment key is needed: --enroll-key KEY or MDM_ENROLL_KEY (manage.py create_enrollment_key)")
        if o["devices"] < 1:
            raise CommandError("--devices must be at least 1")
        if not 0.0 <= o["download_cut_rate"] <= 1.0 or o["download_concurrency"] < 0:
            raise CommandError("--download-cut-rate is a fraction (0 to 1) and --download-concurrency at least 0")
        fleet = Fleet(
            base_url=o["base_url"],
            enroll_key=o["enroll_key"],
            devices=o["devices"],
            interval=o["interval"],
            duration=o["duration"],
            hardware_prefix=o["hardware_prefix"],
            enroll_concurrency=o["enroll_concurrency"],
            failure_rate=o["failure_rate"],
            exec_scale=o["exec_scale"],
            push_url=o["push_url"],
            seed=o["seed"],
            owns_process=True,
            download_cut_rate=o["download_cut_rate"],
            download_concurrency=o["download_concurrency"] or None,
        )
        report = asyncio.run(fleet.run())
        self.stdout.write(json.dumps(report, indent=2) if o["json"] else format_report(report))
        if report["enroll_failures"] or report["errors"]:
            raise CommandError("the simulated fleet saw failures (see above)")

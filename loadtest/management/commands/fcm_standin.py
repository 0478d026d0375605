from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the local FCM HTTP v1 stand-in (OAuth2 token endpoint + messages:send, FCM's error "
        "bodies, admin endpoints under /_standin/). See docs/commands.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9099)
        parser.add_argument("--project-id", default="mdm-standin")
        parser.add_argument("--public-url", default="")
        parser.add_argument("--write-credentials", default="", help="write the service-account JSON here")
        parser.add_argument("--accept-any-token", action="store_true")

    def handle(self, *args, **options):
        from loadtest import fcm_standin

        argv = ["--host", options["host"], "--port", str(options["port"]), "--project-id", options["project_id"]]
        if options["public_url"]:
            argv += ["--public-url", options["public_url"]]
        if options["write_credentials"]:
            argv += ["--write-credentials", options["write_credentials"]]
        if options["accept_any_token"]:
            argv.append("--accept-any-token")
        fcm_standin.main(argv)

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_out, user_login_failed

        from accounts import limits, services

        # Django's own events, the one place every sign-in and sign-out path (console, Django
        # admin, API token) passes; the receivers only count and close sockets (see each).
        user_login_failed.connect(limits.count_login_failure, dispatch_uid="accounts.count_login_failure")
        user_logged_out.connect(services.on_logged_out, dispatch_uid="accounts.on_logged_out")

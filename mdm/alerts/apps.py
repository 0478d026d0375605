from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alerting (docs/alerts.md): rules over what the fleet and the server report, low-noise
    alerts, notifications by e-mail and webhook, auto-remediation with guardrails. Part of the
    project layer: it reads every app below it and issues commands through commands/."""

    name = "mdm.alerts"
    label = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

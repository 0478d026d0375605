from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alerting (docs/alerts.md): rules over what the fleet and the server report, low-noise
    alerts, notifications by e-mail and webhook, auto-remediation with guardrails. Part of the
    project layer: it reads every app below it and issues commands through commands/."""

    name = "mdm.alerts"
    label = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The evaluation cycle and the rule validation call remediation through these hooks
        # (mdm.alerts.services), so services.py need not know its guardrails.
        from mdm.alerts import remediation, services
        from mdm.alerts.remediation import rules

        if rules.check not in services.remediation_checks:
            services.remediation_checks.append(rules.check)
        if remediation.after_evaluation not in services.after_evaluation:
            services.after_evaluation.append(remediation.after_evaluation)
        # A group of alerts is sent when its window closes, by a task scheduled for that moment.
        from mdm.alerts import notify, tasks

        notify.send_later = tasks.send_later
        services.look_again_at = tasks.look_again_at

"""Auto-remediation (docs/alerts.md "Auto-remediation"): a rule may name what to run on the devices
whose alerts fire - a typed command, a command preset, or a re-sync of the device's policy - within
guardrails: runs per device per hour, a cool-down per device, a share of the rule's scope per
window, a dry run that only records, and a stop of its own when its runs fail too often.

Two hooks, registered at start-up (AlertsConfig.ready): `rules.check` validates and normalises a
rule's remediation (services.remediation_checks), and `after_evaluation` runs after every
evaluation cycle (services.after_evaluation): it follows issued runs to their delivery's result (a
cheap pass over the few runs in flight: the results path belongs to commands/), credits alerts that
resolved after a successful run, and remediates the device alerts that fired, one command per rule
and cycle. Every run is a RemediationRun on the alert, with an event on its timeline.

- `rules`: what a remediation may be, its guardrails, validation;
- `runs`: the guardrails applied, the command issued, the stop of its own and the resume;
- `results`: the runs followed to their results, alerts credited."""

from datetime import datetime

from mdm.alerts.remediation.results import credit_resolved, follow_results
from mdm.alerts.remediation.runs import remediate


def after_evaluation(outcomes, now: datetime) -> None:
    """After every evaluation cycle: results first (so an alert resolving now can be credited to a
    success that just landed), then the resolved alerts, then what fired."""
    follow_results(now)
    for o in outcomes:
        if o.resolved:
            credit_resolved(o.resolved, now)
        if o.fired and o.rule.remediation:
            remediate(rule=o.rule, alert_ids=o.fired, now=now)

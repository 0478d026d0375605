"""The alerting console (docs/alerts.md): alerts (views.alerts), rules (views.rules), webhooks,
maintenance windows and one's own preferences (views.setup)."""

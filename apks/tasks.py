"""Celery tasks of this app: thin, take ids, claim with a conditional update, call a service."""

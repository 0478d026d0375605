"""Celery tasks of this app: thin, take ids, claim with a conditional update, call a service."""

from celery import shared_task

from apks.services import retention, uploads


@shared_task(acks_late=True, ignore_result=True)
def parse_upload(upload_id: str) -> str:
    """A finished tus upload becomes a release (or a refusal). The claim moves it COMPLETE ->
    PARSING, so a duplicate task does nothing; a worker that dies mid-parse leaves it PARSING
    until reap_uploads puts it back."""
    if not uploads.claim_parse(upload_id=upload_id):
        return "claimed elsewhere"
    upload = uploads.ingest_upload(upload_id=upload_id)
    return upload.state if upload else "gone"


@shared_task(ignore_result=True)
def reap_uploads() -> dict:
    return uploads.reap_uploads()


@shared_task(ignore_result=True)
def purge_releases() -> int:
    return retention.purge_old_releases()


@shared_task(ignore_result=True)
def advance_rollouts() -> dict:
    """Every running rollout one step on (apks.services.rollouts: halt, pass a wave, start the
    next). Each rollout is taken under its row lock (skip_locked): two ticks never both act."""
    from apks.services import rollouts

    return rollouts.advance_rollouts()

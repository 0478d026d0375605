import pytest


@pytest.fixture(autouse=True)
def _eager(eager_celery):
    """Sending (e-mail, webhooks) is queued on Celery; run it in the test."""

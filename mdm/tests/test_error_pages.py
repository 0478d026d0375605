"""The console's error pages (DEBUG off, as in production): 404 and 403 inside the console's frame
(the navigation, a way back, the favicon), the sign-in layout for someone signed out, and a 500
page that renders with no request, session or database."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import include, path

from mdm import errors


def _boom(request):
    raise RuntimeError("a bug")


def _ok(request):
    return HttpResponse("ok")


# A URLconf for the 500 test: the project's routes plus one view that fails, and the project's handlers.
urlpatterns = [path("boom/", _boom), path("", include("mdm.urls"))]
handler403 = "mdm.errors.permission_denied"
handler404 = "mdm.errors.page_not_found"
handler500 = "mdm.errors.server_error"


@pytest.fixture(autouse=True)
def _production(settings):
    settings.DEBUG = False


def _html(response) -> str:
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def test_a_404_is_a_console_page_with_the_navigation_and_a_way_home(admin_user, console_for):
    response = console_for(admin_user).get("/devices/00000000-0000-0000-0000-000000000001/")
    assert response.status_code == 404
    html = _html(response)
    assert '<nav aria-label="Main">' in html and 'href="/devices/"' in html
    assert "Page not found" in html and '<a href="/" role="button">Back to the dashboard</a>' in html
    assert 'rel="icon" href="/static/favicon.svg"' in html


def test_a_404_to_someone_signed_out_offers_the_sign_in(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = _html(response)
    assert "Page not found" in html and 'href="/accounts/login/"' in html
    assert '<nav aria-label="Main">' not in html


def test_a_403_says_which_role_it_needs_inside_the_frame(viewer_user, console_for):
    response = console_for(viewer_user).get("/accounts/users/")
    assert response.status_code == 403
    html = _html(response)
    assert "This needs the admin role." in html and "An admin can change your role" in html
    assert '<nav aria-label="Main">' in html and "Back to the dashboard" in html


def test_a_403_to_htmx_stays_a_short_message(viewer_user, console_for):
    response = console_for(viewer_user).post("/accounts/api-keys/", HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    assert response.content == b"This needs the admin role."


def test_the_api_keeps_its_json_errors(viewer_api):
    response = viewer_api.get("/api/v1/no-such-thing")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.urls(__name__)
def test_an_unhandled_error_is_a_styled_500_page_with_a_way_back(admin_user, console_for):
    client = console_for(admin_user)
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    html = _html(response)
    assert "Something went wrong on the server" in html and '<a href="/" role="button">Back to the dashboard</a>' in html
    assert '<nav aria-label="Main">' in html and 'rel="icon" href="/static/favicon.svg"' in html
    assert "a bug" not in html and "RuntimeError" not in html


def test_the_500_page_needs_no_database_session_or_user():
    # No db fixture: pytest-django refuses any query. The request has no session and no user.
    response = errors.server_error(RequestFactory().get("/devices/"))
    assert response.status_code == 500
    assert "Something went wrong on the server" in response.content.decode()

"""GET /api/v1/apks and /api/v1/apks/<id>: every role reads, API keys with apk:read read, no
one writes; the filters of the console page."""

import pytest

from accounts import services as accounts
from apks.services import releases

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(copy_apk, admin_uploader, ci_uploader):
    made = [releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader),
            releases.create_release(path=copy_apk("app-v11"), uploader=ci_uploader, channel="beta"),
            releases.create_release(path=copy_apk("app-v12"), uploader=admin_uploader),
            releases.create_release(path=copy_apk("legacy-v1-only"), uploader=admin_uploader)]
    return made


def ids(response):
    assert response.status_code == 200, response.json()
    return [r["version_code"] for r in response.json()["results"]]


def test_a_viewer_lists_and_reads_releases(viewer_api, catalogue):
    assert ids(viewer_api.get("/api/v1/apks")) == [12, 11, 10, 3]
    one = viewer_api.get(f"/api/v1/apks/{catalogue[0].id}").json()
    for field in ("id", "package", "version_code", "version_name", "sha256", "signer_sha256", "size", "min_sdk", "channel"):
        assert field in one
    assert one["sha256"] == catalogue[0].sha256 and one["uploaded_by"] == "user:alice-admin"


@pytest.mark.parametrize("query,expected", [
    ("package=com.example.fieldapp", [12, 11, 10]),
    ("channel=beta", [11]),
    ("version_code_min=11&version_code_max=11", [11]),
    ("min_sdk=28", [12]),
    ("installable_on_sdk=26", [11, 10, 3]),
    ("uploader=ci-pipeline", [11]),
    ("signer=E6:E6:4B:BC", [12, 11, 10, 3]),
    ("signer=0000", []),
    ("uploaded_after=2000-01-01T00:00:00Z", [12, 11, 10, 3]),
    ("uploaded_before=2000-01-01T00:00:00Z", []),
])
def test_the_filters(viewer_api, catalogue, query, expected):
    assert ids(viewer_api.get(f"/api/v1/apks?{query}")) == expected


@pytest.mark.parametrize("query", ["version_code_min=-1", "version_code_max=99999999999999999999", "min_sdk=x",
                                   "channel=nightly", "uploaded_after=9999-12-31T23:59:59-23:59", "package=" + "a" * 300])
def test_a_bad_filter_is_a_400(viewer_api, catalogue, query):
    response = viewer_api.get(f"/api/v1/apks?{query}")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_an_api_key_with_apk_read_reads(admin_user, catalogue, client):
    made = accounts.create_api_key(actor=admin_user, name="reader", scopes=["apk:read"])
    response = client.get("/api/v1/apks", HTTP_AUTHORIZATION=f"Api-Key {made.raw}")
    assert ids(response) == [12, 11, 10, 3]


def test_outsiders_are_refused(anon_api, catalogue, enrolled_device, client):
    assert anon_api.get("/api/v1/apks").status_code == 401
    assert anon_api.get(f"/api/v1/apks/{catalogue[0].id}").status_code == 401
    assert client.get("/api/v1/apks", **enrolled_device.auth).status_code == 401


@pytest.mark.parametrize("persona", ["viewer_api", "operator_api", "admin_api"])
def test_no_one_writes_through_it(request, persona, catalogue):
    api = request.getfixturevalue(persona)
    assert api.post("/api/v1/apks", {}, format="json").status_code in (403, 405)
    assert api.delete(f"/api/v1/apks/{catalogue[0].id}").status_code in (403, 405)


def test_the_list_costs_a_bounded_number_of_queries(viewer_api, catalogue, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        viewer_api.get("/api/v1/apks")

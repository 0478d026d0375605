"""install_apk takes just an apk_id: the issuer fills package, version_code, sha256 and size
from the release (PROTOCOL.md "Types")."""

import pytest

pytestmark = pytest.mark.django_db


def _post(api, body):
    return api.post("/api/v1/commands", body, format="json")


def test_an_apk_id_is_enough(operator_api, release, enrolled_device):
    response = _post(operator_api, {"type": "install_apk", "params": {"apk_id": str(release.id)}, "target": {"all": True}})
    assert response.status_code == 201, response.json()
    from commands.models import Command

    command = Command.objects.get(pk=response.json()["id"])
    assert command.params == {"apk_id": str(release.id), "package": "com.example.fieldapp", "version_code": 10,
                              "sha256": release.sha256, "size": release.size}


def test_params_that_agree_with_the_release_are_accepted(operator_api, release, enrolled_device):
    params = {"apk_id": str(release.id), "package": release.package, "version_code": 10, "sha256": release.sha256, "size": release.size}
    assert _post(operator_api, {"type": "install_apk", "params": params, "target": {"all": True}}).status_code == 201


@pytest.mark.parametrize("field,value", [("package", "com.example.other"), ("version_code", 11), ("sha256", "0" * 64),
                                         ("size", 1), ("version_code", "10")])
def test_params_that_contradict_the_release_are_a_400_naming_the_field(operator_api, release, enrolled_device, field, value):
    response = _post(operator_api, {"type": "install_apk", "params": {"apk_id": str(release.id), field: value}, "target": {"all": True}})
    assert response.status_code == 400 and field in response.json()["fields"]


@pytest.mark.parametrize("apk_id", [None, "", "x", 7, "5f0c7a4e-2b1d-4c8e-9f3a-6d2e1b0c9a87", "a" * 10_000])
def test_an_unknown_apk_id_is_a_400(operator_api, enrolled_device, apk_id):
    response = _post(operator_api, {"type": "install_apk", "params": {"apk_id": apk_id}, "target": {"all": True}})
    assert response.status_code == 400 and "apk_id" in response.json()["fields"]


def test_a_viewer_cannot_issue_it(viewer_api, release, enrolled_device):
    response = _post(viewer_api, {"type": "install_apk", "params": {"apk_id": str(release.id)}, "target": {"all": True}})
    assert response.status_code == 403

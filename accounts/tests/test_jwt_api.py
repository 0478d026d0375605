def test_a_token_pair_is_issued_for_good_credentials(anon_api, operator_user):
    response = anon_api.post("/api/v1/auth/token", {"username": "oscar-operator", "password": "correct-horse-battery-staple"}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


def test_bad_credentials_get_401_with_detail_and_code(anon_api, operator_user):
    response = anon_api.post("/api/v1/auth/token", {"username": "oscar-operator", "password": "wrong"}, format="json")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] and body["detail"]


def test_missing_fields_get_a_400_naming_them(anon_api, db):
    response = anon_api.post("/api/v1/auth/token/", {"username": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "password" in response.json()["fields"]


def test_the_access_token_authenticates_and_refresh_issues_a_new_one(anon_api, operator_user):
    pair = anon_api.post("/api/v1/auth/token", {"username": "oscar-operator", "password": "correct-horse-battery-staple"}, format="json").json()
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    me = anon_api.get("/api/v1/users/me")
    assert me.status_code == 200 and me.json()["role"] == "operator"
    refreshed = anon_api.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()


def test_a_garbage_token_is_401(anon_api, db):
    anon_api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = anon_api.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_only_admins_list_users(admin_api, operator_api, viewer_api, anon_api):
    assert admin_api.get("/api/v1/users").status_code == 200
    assert operator_api.get("/api/v1/users").status_code == 403
    assert viewer_api.get("/api/v1/users").status_code == 403
    assert anon_api.get("/api/v1/users").status_code == 401


def test_an_admin_sets_a_role_through_the_api(admin_api, viewer_user):
    response = admin_api.post(f"/api/v1/users/{viewer_user.pk}/role", {"role": "admin"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "admin"
    bad = admin_api.post(f"/api/v1/users/{viewer_user.pk}/role", {"role": "god"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()["fields"]

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("register/", views.register, name="register"),
    path("register/pending/", views.registration_pending, name="registration_pending"),
    path("profile/", views.profile, name="profile"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path("users/", views.user_list, name="user_list"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<uuid:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("users/<uuid:user_id>/role/", views.user_set_role, name="user_set_role"),
    path("users/<uuid:user_id>/approve/", views.user_approve, name="user_approve"),
    path("users/<uuid:user_id>/reject/", views.user_reject, name="user_reject"),
    path("users/<uuid:user_id>/active/", views.user_set_active, name="user_set_active"),
]

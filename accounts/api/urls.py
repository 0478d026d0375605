from django.urls import re_path
from accounts.api.views import ApiKeyViewSet, TokenObtainView, TokenRefreshView, UserViewSet
from mdm.urlutil import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("users", UserViewSet, basename="user")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    re_path(r"^auth/token/?$", TokenObtainView.as_view(), name="token_obtain_pair"),
    re_path(r"^auth/token/refresh/?$", TokenRefreshView.as_view(), name="token_refresh"),
    *router.urls,
]

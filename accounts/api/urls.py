from django.urls import re_path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.api.views import UserViewSet
from mdm.urlutil import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    re_path(r"^auth/token/?$", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    re_path(r"^auth/token/refresh/?$", TokenRefreshView.as_view(), name="token_refresh"),
    *router.urls,
]

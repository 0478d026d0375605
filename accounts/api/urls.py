from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.api.views import UserViewSet
from mdm.urlutil import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    path("auth/token", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/", TokenObtainPairView.as_view()),
    path("auth/token/refresh", TokenRefreshView.as_view(), name="token_refresh"),
    path("auth/token/refresh/", TokenRefreshView.as_view()),
    *router.urls,
]

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views

from accounts import limits, services
from accounts.api.serializers import (
    ActiveSerializer,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    ApproveSerializer,
    SetRoleSerializer,
    UserSerializer,
)
from accounts.models import ApiKey
from accounts.permissions import IsAdmin
from accounts.tokens import TokenObtainSerializer, TokenRefreshSerializer
from mdm.audit import client_ip

User = get_user_model()


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class TokenObtainView(jwt_views.TokenObtainPairView):
    """simplejwt's, answering a locked-out sign-in (django-axes, or the per-IP failure limit) with
    429 rate_limited and Retry-After instead of its 401."""

    serializer_class = TokenObtainSerializer

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            # django-axes marks the request it was given: the DRF request, which AxesMiddleware
            # never sees, so the answer is made here.
            if getattr(request, "axes_locked_out", False):
                seconds = limits.lockout_seconds(request)
                body = {"detail": limits.lockout_message(seconds), "code": "rate_limited"}
                return Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(seconds)})
            raise


class TokenRefreshView(jwt_views.TokenRefreshView):
    serializer_class = TokenRefreshSerializer


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Users (admins only). `me` is open to every signed-in user."""

    serializer_class = UserSerializer
    permission_classes = [IsAdmin]
    queryset = User.objects.order_by("username")
    lookup_field = "id"

    @action(detail=False, methods=["get"], permission_classes=[IsAuthenticated])
    def me(self, request):
        return Response(UserSerializer(request.user).data)

    @extend_schema(request=SetRoleSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"], url_path="role")
    def set_role(self, request, id=None):
        user = self.get_object()
        serializer = SetRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.set_role(actor=request.user, user=user, role=serializer.validated_data["role"], ip=client_ip(request))
        return Response(UserSerializer(user).data)

    @extend_schema(request=ApproveSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"], url_path="approve")
    def approve(self, request, id=None):
        """Let a self-registered account in with a role (REGISTRATION_DEFAULT_ROLE when none)."""
        user = self.get_object()
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        role = serializer.validated_data.get("role") or settings.REGISTRATION_DEFAULT_ROLE
        try:
            user = services.approve_user(actor=request.user, user=user, role=role, ip=client_ip(request))
        except services.AccountStateError as exc:
            raise Conflict(str(exc)) from None
        return Response(UserSerializer(user).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"], url_path="reject")
    def reject(self, request, id=None):
        """Delete a self-registered account that is still waiting for approval."""
        user = self.get_object()
        try:
            services.reject_registration(actor=request.user, user=user, ip=client_ip(request))
        except services.AccountStateError as exc:
            raise Conflict(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ActiveSerializer, responses=UserSerializer)
    @action(detail=True, methods=["post"], url_path="active")
    def set_active(self, request, id=None):
        """Deactivate (ends the account's sessions, API tokens and live sockets) or reactivate."""
        user = self.get_object()
        serializer = ActiveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.set_active(actor=request.user, user=user, active=serializer.validated_data["active"], ip=client_ip(request))
        except services.AccountStateError as exc:
            raise Conflict(str(exc)) from None
        return Response(UserSerializer(user).data)


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Scoped API keys (admins only; docs/apks.md). The key is in the create answer only."""

    serializer_class = ApiKeySerializer
    permission_classes = [IsAdmin]
    queryset = ApiKey.objects.select_related("created_by").order_by("-created_at")
    lookup_field = "id"
    filterset_fields: list = []

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        form = ApiKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        days = form.validated_data.get("expires_in_days")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        made = services.create_api_key(actor=request.user, name=form.validated_data["name"], scopes=form.validated_data["scopes"],
                                       expires_at=expires_at, ip=client_ip(request))
        body = {**ApiKeySerializer(made.key).data, "key": made.raw}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, id=None):
        key = services.revoke_api_key(actor=request.user, key=self.get_object(), ip=client_ip(request))
        return Response(ApiKeySerializer(key).data)

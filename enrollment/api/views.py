"""Enrollment keys and re-enrollment requests over the admin API (admins only). A key is in its
create answer only."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response

from accounts.permissions import IsAdmin
from enrollment.api.serializers import (
    CreatedEnrollmentKeySerializer,
    EnrollmentKeyCreateSerializer,
    EnrollmentKeySerializer,
    ReenrollRequestSerializer,
)
from enrollment.models import REENROLL_LIST_STATES, EnrollmentKey, ReenrollRequest
from enrollment.services import keys as services
from enrollment.services import reenroll as reenroll_services
from mdm.audit import client_ip

UUID_RE = "[0-9a-fA-F-]{36}"


class EnrollmentKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = EnrollmentKeySerializer
    permission_classes = [IsAdmin]
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = EnrollmentKey.objects.select_related("group", "created_by").prefetch_related("tags")

    @extend_schema(request=EnrollmentKeyCreateSerializer, responses={201: CreatedEnrollmentKeySerializer})
    def create(self, request):
        serializer = EnrollmentKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        new = services.create_enrollment_key(
            actor=request.user,
            name=data["name"],
            expires_at=services.expires_in_days(data.get("expires_in_days")),
            max_uses=data.get("max_uses"),
            group=data.get("group"),
            tags=data.get("tags", []),
            ip=client_ip(request),
        )
        new.key.key = new.raw
        return Response(CreatedEnrollmentKeySerializer(new.key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=EnrollmentKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, id=None):
        key = services.revoke_enrollment_key(actor=request.user, key=self.get_object(), ip=client_ip(request))
        return Response(EnrollmentKeySerializer(key).data)


class NotPending(APIException):
    status_code = 409
    default_code = "not_pending"
    default_detail = "This request can no longer be decided."


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("state", str, enum=REENROLL_LIST_STATES, description="Which requests (default: pending).")]
    )
)
class ReenrollRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Re-enrollment requests (PROTOCOL.md v1.1): a known device enrolling again without its
    current token waits until an admin approves its request. Newest first; pending ones unless
    `state` says otherwise."""

    serializer_class = ReenrollRequestSerializer
    permission_classes = [IsAdmin]
    lookup_field = "id"
    lookup_value_regex = UUID_RE

    def get_object(self):
        # DRF turns Http404 into NotFound only after the project's handler has looked at it, which
        # then misses the "code" (mdm.api.exception_handler); raised here it has both.
        try:
            return super().get_object()
        except Http404:
            raise NotFound() from None

    def get_queryset(self):
        if self.action != "list":
            return ReenrollRequest.objects.listed()
        state = self.request.query_params.get("state", "pending")
        if state not in REENROLL_LIST_STATES:
            raise ValidationError({"state": [f"One of: {', '.join(REENROLL_LIST_STATES)}."]})
        return ReenrollRequest.objects.listed(state)

    @extend_schema(request=None, responses={200: ReenrollRequestSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, id=None):
        """The next enroll carrying this request's id re-enrolls the device (once, within 24 h)."""
        return self._decide(reenroll_services.approve_reenroll_request)

    @extend_schema(request=None, responses={200: ReenrollRequestSerializer})
    @action(detail=True, methods=["post"])
    def deny(self, request, id=None):
        """Refuses the request, or withdraws an approval not yet used."""
        return self._decide(reenroll_services.deny_reenroll_request)

    def _decide(self, decide):
        pending = self.get_object()
        try:
            decide(actor=self.request.user, request_id=pending.pk, ip=client_ip(self.request))
        except reenroll_services.ReenrollDecisionRefused as exc:
            raise NotPending(exc.detail) from None
        return Response(ReenrollRequestSerializer(self.get_queryset().get(pk=pending.pk)).data)

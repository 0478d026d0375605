"""Enrollment keys over the admin API (admins only). The key is in the create answer only."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import IsAdmin
from enrollment import services
from enrollment.api.serializers import (
    CreatedEnrollmentKeySerializer,
    EnrollmentKeyCreateSerializer,
    EnrollmentKeySerializer,
)
from enrollment.models import EnrollmentKey
from mdm.audit import client_ip


class EnrollmentKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = EnrollmentKeySerializer
    permission_classes = [IsAdmin]
    lookup_field = "id"
    lookup_value_regex = "[0-9a-fA-F-]{36}"
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

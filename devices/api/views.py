"""The admin REST API of devices, groups and tags (DRF, JWT). Reads for every role; writes for
operators; deletion and restore for admins (re-enrollment requests: enrollment.api)."""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.permissions import IsAdmin
from devices import services, writebehind
from devices.api.serializers import (
    BulkDeleteResultSerializer,
    BulkDeleteSerializer,
    DeviceSerializer,
    DeviceUpdateSerializer,
    GroupSerializer,
    HeartbeatSampleSerializer,
    InstalledAppSerializer,
    TagSerializer,
)
from devices.filters import DeviceFilter
from devices.models import Device, DeviceGroup, HeartbeatSample, Tag
from mdm.audit import client_ip

UUID_RE = "[0-9a-fA-F-]{36}"
ADMIN_ACTIONS = {"bulk_delete", "restore", "retired"}


class DeviceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Enrolled devices with their latest status. Filter with `q`, `group`, `tag`, `status`,
    `battery_below`, `battery_above`, `android_version`, `os_version`, `patch_older_than_days`,
    `compliant`, `seen_within_s`, `not_seen_for_s`; order
    with `sort` (e.g. `-last_seen`, `battery`)."""

    serializer_class = DeviceSerializer
    filterset_class = DeviceFilter
    lookup_field = "id"
    lookup_value_regex = UUID_RE

    def get_permissions(self):
        if self.action in ADMIN_ACTIONS:
            return [IsAdmin()]
        return super().get_permissions()

    def get_queryset(self):
        if self.action in ("restore", "retired"):
            base = Device.objects.filter(deleted_at__isnull=False)
        else:
            base = Device.objects.for_user(self.request.user)
        return base.select_related("status", "group", "policy_state").prefetch_related("tags").order_by("hardware_id")

    def get_serializer(self, *args, **kwargs):
        # What devices sent and PostgreSQL has not yet been given (the write-behind's second):
        # laid over the rows this answer shows, one Redis MGET for the page.
        if args and self.action in ("list", "retrieve"):
            items = args[0] if kwargs.get("many") else [args[0]]
            writebehind.overlay([getattr(d, "status", None) for d in items])
        return super().get_serializer(*args, **kwargs)

    @extend_schema(request=DeviceUpdateSerializer, responses=DeviceSerializer)
    def partial_update(self, request, id=None):
        device = self.get_object()
        serializer = DeviceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "tags" in changes:
            changes["tag_names"] = changes.pop("tags")
        services.update_device(actor=request.user, device=device, ip=client_ip(request), **changes)
        return Response(DeviceSerializer(self.get_queryset().get(pk=device.pk)).data)

    @extend_schema(request=BulkDeleteSerializer, responses=BulkDeleteResultSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-delete")
    def bulk_delete(self, request):
        serializer = BulkDeleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deleted = services.delete_devices(
            actor=request.user, device_ids=serializer.validated_data["device_ids"], ip=client_ip(request)
        )
        return Response({"deleted": deleted})

    @action(detail=False, methods=["get"])
    def retired(self, request):
        """Devices deleted by an admin: their hardware ids cannot enroll until restored."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DeviceSerializer(page, many=True).data)

    @extend_schema(request=None, responses=DeviceSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, id=None):
        device = services.restore_device(actor=request.user, device=self.get_object(), ip=client_ip(request))
        return Response(DeviceSerializer(device).data)

    @extend_schema(responses=InstalledAppSerializer(many=True))
    @action(detail=True, methods=["get"])
    def apps(self, request, id=None):
        device = self.get_object()
        page = self.paginate_queryset(device.apps.all())
        return self.get_paginated_response(InstalledAppSerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("hours", int, description="How far back (1-720, default 24).")],
        responses=HeartbeatSampleSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def history(self, request, id=None):
        device = self.get_object()
        try:
            hours = int(request.query_params.get("hours", 24))
        except ValueError:
            raise ValidationError({"hours": ["An integer between 1 and 720."]}) from None
        if not 1 <= hours <= 720:
            raise ValidationError({"hours": ["An integer between 1 and 720."]})
        since = timezone.now() - timedelta(hours=hours)
        samples = HeartbeatSample.objects.filter(device_id=device.pk, at__gte=since).order_by("at")
        page = self.paginate_queryset(samples)
        return self.get_paginated_response(HeartbeatSampleSerializer(page, many=True).data)


class GroupViewSet(viewsets.ModelViewSet):
    serializer_class = GroupSerializer
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    filterset_fields = ["name"]

    def get_queryset(self):
        return DeviceGroup.objects.annotate(
            device_count=Count("devices", filter=Q(devices__deleted_at__isnull=True))
        ).order_by("name")

    def perform_create(self, serializer):
        serializer.instance = services.create_group(actor=self.request.user, ip=client_ip(self.request), **serializer.validated_data)

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.update_group(
            actor=self.request.user,
            group=serializer.instance,
            name=data.get("name", serializer.instance.name),
            description=data.get("description", serializer.instance.description),
            ip=client_ip(self.request),
        )

    def perform_destroy(self, instance):
        services.delete_group(actor=self.request.user, group=instance, ip=client_ip(self.request))

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        response.data = GroupSerializer(self.get_queryset().get(pk=response.data["id"])).data
        return response


class TagViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = TagSerializer
    lookup_field = "name"
    queryset = Tag.objects.order_by("name")
    pagination_class = None

    def perform_create(self, serializer):
        serializer.instance = services.create_tag(actor=self.request.user, name=serializer.validated_data["name"], ip=client_ip(self.request))

    def perform_destroy(self, instance):
        services.delete_tag(actor=self.request.user, tag=instance, ip=client_ip(self.request))




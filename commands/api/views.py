"""Admin API for commands (DRF + JWT). Reads are thin viewsets; state changes are explicit
actions that validate and call one service."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from accounts.permissions import IsAdmin, IsViewer
from commands import selectors, services
from commands.api.serializers import (
    CommandCreatedSerializer,
    CommandCreateSerializer,
    CommandDetailSerializer,
    CommandSerializer,
    DryRunSerializer,
    PresetSerializer,
    ShellAllowRuleSerializer,
    WifiConfigSerializer,
    WifiPushSerializer,
)
from commands.models import Command, Delivery, Preset, ShellAllowRule, WifiConfig
from commands.params import ParamsError
from mdm.audit import client_ip


class Conflict(APIException):
    status_code = 409
    default_code = "conflict"
    default_detail = "This Idempotency-Key was used for a different request."


def _raise(exc: ParamsError):
    raise ValidationError(exc.errors)


class IsViewerReadAdminWrite(IsViewer):
    def has_permission(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return super().has_permission(request, view)
        return IsAdmin().has_permission(request, view)


class CommandViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Commands: issue (operators), list and inspect (everyone signed in), cancel."""

    queryset = Command.objects.select_related("preset").order_by("-created_at")
    filterset_class = selectors.CommandFilter
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_serializer_class(self):
        if self.action == "retrieve":
            return CommandDetailSerializer
        if self.action == "create":
            return CommandCreateSerializer
        return CommandSerializer

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(CommandSerializer(selectors.attach_counters(page), many=True).data)

    def get_object(self):
        command = super().get_object()
        command.counters = services.counters_for([command.pk])[command.pk]
        return command

    def retrieve(self, request, *args, **kwargs):
        command = self.get_object()
        command.delivery_list = Delivery.objects.filter(command=command).select_related("device").order_by("seq")
        return Response(CommandDetailSerializer(command).data)

    @extend_schema(
        request=CommandCreateSerializer,
        responses={201: CommandCreatedSerializer, 200: DryRunSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
    )
    def create(self, request, *args, **kwargs):
        data = CommandCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        preset = self._preset(v)
        try:
            if v["dry_run"]:
                ids = services.preview_command(type=v.get("type", ""), params=v["params"], target=v["target"],
                                               expires_in_s=v.get("expires_in_s"), preset=preset)
                return Response({"dry_run": True, "device_ids": [str(i) for i in ids], "target_count": len(ids)})
            key = request.headers.get("Idempotency-Key", "").strip()[:200]
            issued = services.issue_command(
                actor=request.user, type=v.get("type", ""), params=v["params"], target=v["target"],
                expires_in_s=v.get("expires_in_s"), preset=preset, idempotency_key=key,
                request_hash=services.request_fingerprint(request.data) if key else "", ip=client_ip(request),
            )
        except ParamsError as exc:
            _raise(exc)
        except services.IdempotencyConflict:
            raise Conflict()
        command = issued.command
        response = Response(
            {"id": str(command.pk), "target_count": command.target_count, "type": command.type,
             "expires_at": command.expires_at}, status=status.HTTP_201_CREATED,
        )
        if not issued.created:
            response["Idempotent-Replayed"] = "true"
        return response

    def _preset(self, v):
        if not v.get("preset"):
            return None
        qs = Preset.objects.filter(name=v["preset"], archived=False)
        qs = qs.filter(version=v["preset_version"]) if v.get("preset_version") else qs.filter(is_latest=True)
        preset = qs.first()
        if preset is None:
            raise ValidationError({"preset": [f"No preset {v['preset']!r}" + (f" v{v['preset_version']}" if v.get("preset_version") else "") + "."]})
        return preset

    @extend_schema(request=None, responses={200: CommandSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        command = self.get_object()
        services.cancel_command(actor=request.user, command=command, ip=client_ip(request))
        return Response(CommandSerializer(selectors.command_with_counters(command.pk)).data)


class PresetViewSet(viewsets.ModelViewSet):
    """Presets: named, versioned param sets. Updating makes a new version; deleting archives."""

    serializer_class = PresetSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self):
        qs = Preset.objects.select_related("created_by")
        if self.action == "list" and self.request.query_params.get("all_versions") not in ("1", "true"):
            qs = qs.filter(is_latest=True, archived=False)
        return qs

    def perform_create(self, serializer):
        v = serializer.validated_data
        try:
            serializer.instance = services.create_preset(actor=self.request.user, ip=client_ip(self.request), **v)
        except ParamsError as exc:
            _raise(exc)

    def perform_update(self, serializer):
        try:
            serializer.instance = services.update_preset(
                actor=self.request.user, preset=serializer.instance, ip=client_ip(self.request),
                **{k: v for k, v in serializer.validated_data.items() if k != "name"},
            )
        except ParamsError as exc:
            _raise(exc)

    def perform_destroy(self, instance):
        services.archive_preset(actor=self.request.user, preset=instance, ip=client_ip(self.request))


class ShellAllowRuleViewSet(viewsets.ModelViewSet):
    """The shell allowlist: everyone signed in reads; admins edit (audited)."""

    queryset = ShellAllowRule.objects.all()
    serializer_class = ShellAllowRuleSerializer
    permission_classes = [IsViewerReadAdminWrite]
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def perform_create(self, serializer):
        try:
            serializer.instance = services.create_allow_rule(actor=self.request.user, ip=client_ip(self.request), **serializer.validated_data)
        except ParamsError as exc:
            _raise(exc)

    def perform_update(self, serializer):
        try:
            serializer.instance = services.update_allow_rule(
                actor=self.request.user, rule=serializer.instance, ip=client_ip(self.request), **serializer.validated_data
            )
        except ParamsError as exc:
            _raise(exc)

    def perform_destroy(self, instance):
        services.delete_allow_rule(actor=self.request.user, rule=instance, ip=client_ip(self.request))


class WifiConfigViewSet(viewsets.ModelViewSet):
    """Central Wi-Fi configs. The password is encrypted at rest and answered as "***"."""

    queryset = WifiConfig.objects.select_related("group")
    serializer_class = WifiConfigSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def perform_create(self, serializer):
        v = dict(serializer.validated_data)
        v["password"] = v.get("password") or ""
        try:
            serializer.instance = services.create_wifi_config(actor=self.request.user, ip=client_ip(self.request), **v)
        except ParamsError as exc:
            _raise(exc)

    def perform_update(self, serializer):
        try:
            serializer.instance = services.update_wifi_config(
                actor=self.request.user, config=serializer.instance, ip=client_ip(self.request), **serializer.validated_data
            )
        except ParamsError as exc:
            _raise(exc)

    def perform_destroy(self, instance):
        services.delete_wifi_config(actor=self.request.user, config=instance, ip=client_ip(self.request))

    @extend_schema(request=WifiPushSerializer, responses={201: CommandCreatedSerializer})
    @action(detail=True, methods=["post"])
    def push(self, request, pk=None):
        config = self.get_object()
        body = WifiPushSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            issued = services.push_wifi_config(actor=request.user, config=config, ip=client_ip(request), **body.validated_data)
        except ParamsError as exc:
            _raise(exc)
        return Response({"id": str(issued.command.pk), "target_count": issued.command.target_count}, status=201)

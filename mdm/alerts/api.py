"""The alerting API (docs/alerts.md): rules (everyone reads, admins write) and their kind
catalogue; alerts with acknowledge and snooze (operators); webhooks (admins; the secret is
answered once, at creation); maintenance windows (operators write, everyone reads); and each
user's own notification preferences. Thin viewsets: reads scoped in get_queryset, every change
one service call, a ParamsError a 400 naming the field."""

from datetime import timedelta

from django.urls import re_path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdmin, IsOperator, IsViewer
from commands.params import ParamsError
from devices.models import DeviceGroup
from mdm.alerts import selectors, services
from mdm.alerts.filters import AlertFilter
from mdm.alerts.models import Alert, AlertRule, MaintenanceWindow, NotificationPreference, WebhookEndpoint
from mdm.alerts.serializers import (
    AlertDetailSerializer,
    AlertRuleSerializer,
    AlertRuleWriteSerializer,
    AlertSerializer,
    KindSerializer,
    MaintenanceWindowCreateSerializer,
    MaintenanceWindowSerializer,
    PreferenceSerializer,
    SnoozeSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookTestQueuedSerializer,
    WebhookWriteSerializer,
    kind_catalogue,
)
from mdm.audit import client_ip
from mdm.urlutil import OptionalSlashRouter

UUID_RE = "[0-9a-fA-F-]{36}"


def _valid(serializer_class, request, **kwargs) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["A JSON object."]})
    data = serializer_class(data=request.data, **kwargs)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def _service(call, **kwargs):
    try:
        return call(**kwargs)
    except ParamsError as exc:
        raise ValidationError(exc.errors) from None


class AlertRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alert rules: a kind's condition with its params, a scope, a severity, hold and clear times and
    who is told. Every role reads; admins create, change (PATCH) and delete. The kinds and their
    params: GET /api/v1/alert-rules/kinds."""

    serializer_class = AlertRuleSerializer
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = AlertRule.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_permissions(self):
        return [IsViewer()] if self.request.method in ("GET", "HEAD", "OPTIONS") else [IsAdmin()]

    def get_queryset(self):
        return AlertRule.objects.order_by("name")

    @extend_schema(request=AlertRuleWriteSerializer, responses={201: AlertRuleSerializer})
    def create(self, request, *args, **kwargs):
        data = _valid(AlertRuleWriteSerializer, request)
        rule = _service(services.create_rule, actor=request.user, data=data, ip=client_ip(request))
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AlertRuleWriteSerializer, responses={200: AlertRuleSerializer})
    def partial_update(self, request, *args, **kwargs):
        rule = self.get_object()
        data = _valid(AlertRuleWriteSerializer, request)
        rule = _service(services.update_rule, actor=request.user, rule=rule, data=data, ip=client_ip(request))
        return Response(AlertRuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.delete_rule(actor=request.user, rule=self.get_object(), ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: KindSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def kinds(self, request):
        """The built-in kinds: what each is about, its default severity, hold and clear times, and
        its params with label (unit included), bounds and default."""
        return Response(KindSerializer(kind_catalogue(), many=True).data)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts, the most recently fired first. Filter with `state` (open, pending, firing, resolved),
    `severity`, `rule`, `group`, `subject_type`, `subject_id`, `flapping`, `acknowledged`, `notification`. One
    alert answers with its timeline, notifications and remediation runs. Operators acknowledge and
    snooze."""

    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    permission_classes = [IsViewer]
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = Alert.objects.none()

    def get_queryset(self):
        return selectors.alerts_for(self.request.user)

    @extend_schema(responses={200: AlertDetailSerializer})
    def retrieve(self, request, *args, **kwargs):
        return Response(AlertDetailSerializer(self._detailed(self.get_object())).data)

    @staticmethod
    def _detailed(alert):
        alert.timeline_entries = selectors.timeline(alert)
        alert.notification_list = selectors.notifications(alert)
        alert.remediation_list = list(alert.remediation_runs.order_by("at")[:200])
        return alert

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def acknowledge(self, request, id=None):
        """Someone is on it: no further notifications of this alert (its resolve is still told)."""
        alert = services.acknowledge(actor=request.user, alert=self.get_object(), ip=client_ip(request))
        return Response(AlertSerializer(selectors.alerts_for(request.user).get(pk=alert.pk)).data)

    @extend_schema(request=SnoozeSerializer, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def snooze(self, request, id=None):
        """No notifications of this alert for `minutes`."""
        alert = self.get_object()
        minutes = _valid(SnoozeSerializer, request)["minutes"]
        _service(services.snooze, actor=request.user, alert=alert, minutes=minutes, ip=client_ip(request))
        return Response(AlertSerializer(selectors.alerts_for(request.user).get(pk=alert.pk)).data)


class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Webhook endpoints (admins): JSON notifications signed with HMAC-SHA256 under the endpoint's
    secret (docs/alerts.md shows how to verify). The secret is answered once, at creation."""

    serializer_class = WebhookSerializer
    permission_classes = [IsAdmin]
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = WebhookEndpoint.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return WebhookEndpoint.objects.order_by("name")

    @extend_schema(request=WebhookWriteSerializer, responses={201: WebhookCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = _valid(WebhookWriteSerializer, request)
        secret = data.pop("secret", "") or services.new_webhook_secret()
        hook = _service(services.create_webhook, actor=request.user, name=data.get("name", ""), url=data.get("url", ""),
                        secret=secret, all_rules=data.get("all_rules", False), enabled=data.get("enabled", True),
                        ip=client_ip(request))
        hook.secret = secret  # the plain secret, this once (the row holds it encrypted)
        return Response(WebhookCreatedSerializer(hook).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookWriteSerializer, responses={200: WebhookSerializer})
    def partial_update(self, request, *args, **kwargs):
        hook = self.get_object()
        data = _valid(WebhookWriteSerializer, request)
        if data.get("secret") == "":
            raise ValidationError({"secret": ["Give the new secret (16 to 200 characters), or leave the field out."]})
        hook = _service(services.update_webhook, actor=request.user, hook=hook, data=data, ip=client_ip(request))
        return Response(WebhookSerializer(hook).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.delete_webhook(actor=request.user, hook=self.get_object(), ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: WebhookTestQueuedSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, id=None):
        """Queue one signed test call (`"event": "test"`); its outcome shows in the delivery log."""
        d = services.send_test_webhook(actor=request.user, hook=self.get_object(), ip=client_ip(request))
        return Response({"delivery": WebhookDeliverySerializer(d).data}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, id=None):
        """The endpoint's delivery log, newest first: attempts, last status and error."""
        page = self.paginate_queryset(self.get_object().deliveries.order_by("-created_at"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class MaintenanceWindowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                               viewsets.GenericViewSet):
    """Maintenance windows: no notifications for a group's devices (or the whole fleet's) while
    they are expected to be down; alerts still open and resolve. Everyone reads; operators create
    and delete (ending it early)."""

    serializer_class = MaintenanceWindowSerializer
    permission_classes = [IsViewer]
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = MaintenanceWindow.objects.none()

    def get_queryset(self):
        return MaintenanceWindow.objects.select_related("group", "created_by").order_by("-starts_at")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(request=MaintenanceWindowCreateSerializer, responses={201: MaintenanceWindowSerializer})
    def create(self, request, *args, **kwargs):
        data = _valid(MaintenanceWindowCreateSerializer, request)
        group = None
        if data.get("group"):
            group = DeviceGroup.objects.filter(name=data["group"]).first()
            if group is None:
                raise ValidationError({"group": [f"No group named {data['group']!r}."]})
        starts_at = data.get("starts_at") or timezone.now()
        if ("ends_at" in data) == ("duration_minutes" in data):
            raise ValidationError({"ends_at": ["Give either ends_at or duration_minutes."]})
        ends_at = data.get("ends_at") or starts_at + timedelta(minutes=data["duration_minutes"])
        w = _service(services.create_maintenance_window, actor=request.user, group=group, starts_at=starts_at,
                     ends_at=ends_at, reason=data.get("reason", ""), ip=client_ip(request))
        return Response(self.get_serializer(w).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.delete_maintenance_window(actor=self.request.user, window=instance, ip=client_ip(self.request))


class IsSignedIn(BasePermission):
    """A user of any role (their own preferences); API keys have no user."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and hasattr(user, "has_role") and user.has_role("viewer"))


class AlertPreferencesView(APIView):
    """My own alert e-mail preferences: whether alert e-mails reach me, the lowest severity that
    does, and rules I muted. Every signed-in user reads and changes their own."""

    permission_classes = [IsSignedIn]

    @staticmethod
    def _answer(user) -> dict:
        pref = NotificationPreference.objects.filter(user=user).prefetch_related("muted_rules").first()
        if pref is None:
            return {"email_enabled": True, "min_severity": "info", "muted_rules": []}
        return {"email_enabled": pref.email_enabled, "min_severity": pref.min_severity,
                "muted_rules": sorted(str(r.pk) for r in pref.muted_rules.all())}

    @extend_schema(responses={200: PreferenceSerializer})
    def get(self, request):
        return Response(self._answer(request.user))

    @extend_schema(request=PreferenceSerializer, responses={200: PreferenceSerializer})
    def put(self, request):
        data = _valid(PreferenceSerializer, request)
        _service(services.set_alert_preferences, actor=request.user, email_enabled=data.get("email_enabled"),
                 min_severity=data.get("min_severity"), muted_rules=data.get("muted_rules"), ip=client_ip(request))
        return Response(self._answer(request.user))

    @extend_schema(request=PreferenceSerializer, responses={200: PreferenceSerializer})
    def patch(self, request):
        return self.put(request)


router = OptionalSlashRouter()
router.register("alert-rules", AlertRuleViewSet, basename="api-alert-rules")
router.register("alerts", AlertViewSet, basename="api-alerts")
router.register("webhooks", WebhookViewSet, basename="api-webhooks")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="api-maintenance-windows")

urlpatterns = [
    re_path(r"^me/alert-preferences/?$", AlertPreferencesView.as_view(), name="api-alert-preferences"),
    *router.urls,
]

"""Admin API of policies (PROTOCOL.md "Admin API essentials", v1.1): everyone signed in reads
(secret values as "***"); admins write, because a policy changes every device it reaches."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from accounts.permissions import IsAdmin, IsViewer
from commands.params import ParamsError
from commands.policies import items as policy_items
from commands.policies import services
from commands.policies.models import Policy, PolicyAssignment, PolicyVersion
from mdm.audit import client_ip


class ViewerReadsAdminWrites(IsViewer):
    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return super().has_permission(request, view)
        return IsAdmin().has_permission(request, view)


class PolicySerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(read_only=True)
    items = serializers.SerializerMethodField()
    assignments = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = ["id", "name", "description", "version", "items", "assignments", "created_at", "updated_at"]
        read_only_fields = fields

    def get_items(self, policy) -> dict:
        return policy_items.masked(policy.current.items) if policy.current else {}

    def get_assignments(self, policy) -> dict:
        rows = getattr(policy, "assignment_rows", None)
        if rows is None:
            rows = list(PolicyAssignment.objects.filter(policy=policy).select_related("group"))
        return {
            "fleet_default": any(a.fleet_default for a in rows),
            "groups": sorted(a.group.name for a in rows if a.group_id),
            "device_count": sum(1 for a in rows if a.device_id),
        }


class PolicyVersionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="id", read_only=True)
    items = serializers.SerializerMethodField()

    class Meta:
        model = PolicyVersion
        fields = ["version", "items", "created_by", "created_at"]
        read_only_fields = fields

    def get_items(self, row) -> dict:
        return policy_items.masked(row.items)


class PolicyWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    items = serializers.JSONField()


class AssignedSerializer(serializers.Serializer):
    target_count = serializers.IntegerField()
    changed = serializers.IntegerField()


class AssignSerializer(serializers.Serializer):
    target = serializers.JSONField()
    dry_run = serializers.BooleanField(default=False)


def _raise(exc: ParamsError):
    raise ValidationError(exc.errors)


class PolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Policies: create, list, read, update (a new version), assign. Versions are numbered
    server-wide and only increase; Wi-Fi passwords are answered as "***"."""

    serializer_class = PolicySerializer
    permission_classes = [ViewerReadsAdminWrites]
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self):
        return Policy.objects.select_related("current").order_by("name")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows: dict = {}
        for a in PolicyAssignment.objects.filter(policy__in=[p.pk for p in page]).select_related("group"):
            rows.setdefault(a.policy_id, []).append(a)
        for policy in page:
            policy.assignment_rows = rows.get(policy.pk, [])
        return self.get_paginated_response(PolicySerializer(page, many=True).data)

    @extend_schema(request=PolicyWriteSerializer, responses={201: PolicySerializer})
    def create(self, request, *args, **kwargs):
        body = PolicyWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        try:
            policy = services.create_policy(actor=request.user, name=v.get("name", ""), items=v["items"],
                                            description=v.get("description", ""), ip=client_ip(request))
        except ParamsError as exc:
            _raise(exc)
        return Response({"id": str(policy.pk), "version": policy.version}, status=status.HTTP_201_CREATED)

    @extend_schema(request=PolicyWriteSerializer, responses={200: PolicySerializer})
    def update(self, request, *args, **kwargs):
        policy = self.get_object()
        body = PolicyWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        extra = {"description": v["description"]} if "description" in v else {}
        try:
            policy = services.update_policy(actor=request.user, policy=policy, items=v["items"], ip=client_ip(request), **extra)
        except ParamsError as exc:
            _raise(exc)
        return Response({"id": str(policy.pk), "version": policy.version})

    @extend_schema(request=AssignSerializer, responses={200: AssignedSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        policy = self.get_object()
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            if body.validated_data["dry_run"]:
                ids = services.preview_assignment(target=body.validated_data["target"])
                return Response({"dry_run": True, "device_ids": [str(i) for i in ids], "target_count": len(ids)})
            done = services.assign_policy(actor=request.user, policy=policy, target=body.validated_data["target"],
                                          ip=client_ip(request))
        except ParamsError as exc:
            _raise(exc)
        return Response(done)

    @extend_schema(request=AssignSerializer, responses={200: AssignedSerializer})
    @action(detail=True, methods=["post"])
    def unassign(self, request, pk=None):
        """Remove this policy's assignment for the target (a group, the fleet default, devices)."""
        policy = self.get_object()
        body = AssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            done = services.unassign_policy(actor=request.user, policy=policy, target=body.validated_data["target"],
                                            ip=client_ip(request))
        except ParamsError as exc:
            _raise(exc)
        return Response(done)

    @extend_schema(responses={200: PolicyVersionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        policy = self.get_object()
        page = self.paginate_queryset(PolicyVersion.objects.filter(policy=policy).order_by("-id"))
        return self.get_paginated_response(PolicyVersionSerializer(page, many=True).data)

"""The admin API of APK releases (read by every role and by API keys with `apk:read`; deployed by
operators) and of their staged rollouts."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from accounts.permissions import HasScope, IsAdmin, IsOperator, IsViewer
from apks import selectors
from apks.api.serializers import DeploySerializer, ReleaseSerializer, RollbackSerializer, RolloutSerializer
from apks.filters import ReleaseFilter
from apks.models import Release, Rollout
from apks.selectors import releases_for
from apks.services import deploy, rollouts
from commands.params import ParamsError
from mdm.audit import client_ip


class StateConflict(APIException):
    status_code = 409
    default_code = "conflict"


class DeployAnswerSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    target_count = serializers.IntegerField(help_text="Devices that get the release.")
    matched = serializers.IntegerField(help_text="Devices of the target before the version filters.")
    excluded = serializers.DictField(child=serializers.IntegerField(), help_text="Left out, by reason: missing, older, "
                                     "up_to_date, newer, sdk_too_low, sdk_unknown.")
    waves = serializers.ListField(child=serializers.DictField())
    device_ids = serializers.ListField(child=serializers.CharField(), required=False, help_text="Dry run only.")
    command_id = serializers.CharField(required=False, help_text="Without a rollout: the install_apk command.")
    rollout = RolloutSerializer(required=False)

UUID_RE = "[0-9a-fA-F-]{36}"


class ReleaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """APK releases, newest version first per package. Filter with `package`, `channel`,
    `version_code_min`, `version_code_max`, `signer` (SHA-256 of the signing certificate, or its
    start), `min_sdk`, `installable_on_sdk`, `uploader`, `uploaded_after`, `uploaded_before`."""

    serializer_class = ReleaseSerializer
    filterset_class = ReleaseFilter
    permission_classes = [IsViewer | HasScope.of("apk:read")]
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = Release.objects.none()

    def get_queryset(self):
        return releases_for(self.request).order_by("package", "-version_code")

    @extend_schema(request=DeploySerializer, responses={200: DeployAnswerSerializer, 201: DeployAnswerSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def deploy(self, request, id=None):
        """Deploy this release: install_apk to the target's devices that the version filters keep, at once
        or as a staged rollout. `dry_run` answers the selection (and the waves) and writes nothing."""
        release = self.get_object()
        data = DeploySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            done = deploy.deploy_release(actor=request.user, release=release, target=v["target"], versions=v.get("versions"),
                                         sdk_check=v["sdk_check"], rollout=v.get("rollout"), expires_in_s=v.get("expires_in_s"),
                                         dry_run=v["dry_run"], ip=client_ip(request))
        except ParamsError as exc:
            raise ValidationError(exc.errors)
        body = {"dry_run": v["dry_run"], "target_count": len(done.selection.device_ids), "matched": done.selection.matched,
                "excluded": done.selection.excluded, "waves": [{"label": label, "devices": n} for label, n in done.waves]}
        if v["dry_run"]:
            return Response({**body, "device_ids": [str(i) for i in done.selection.device_ids]})
        if done.rollout is not None:
            body["rollout"] = RolloutSerializer(selectors.rollout_with_waves(done.rollout.pk)).data
        else:
            body["command_id"] = str(done.command.pk)
        return Response(body, status=status.HTTP_201_CREATED)


class RolloutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staged rollouts (POST /api/v1/apks/<id>/deploy with `rollout` creates one): read by every role;
    pause, resume and retry-failed by operators; rollback by admins. Filter with `state` and `package`."""

    serializer_class = RolloutSerializer
    permission_classes = [IsViewer]
    lookup_field = "id"
    lookup_value_regex = UUID_RE
    queryset = Rollout.objects.none()

    def get_queryset(self):
        if not self.request.user.is_authenticated:
            return Rollout.objects.none()
        qs = Rollout.objects.select_related("release").order_by("-created_at")
        state, package = self.request.query_params.get("state"), self.request.query_params.get("package")
        if state:
            qs = qs.filter(state=state)
        if package:
            qs = qs.filter(release__package=package)
        return qs

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RolloutSerializer([selectors.rollout_with_waves(r.pk) for r in page], many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(RolloutSerializer(selectors.rollout_with_waves(self.get_object().pk)).data)

    def _do(self, service, **kwargs):
        rollout = self.get_object()
        try:
            service(actor=self.request.user, rollout_id=rollout.pk, ip=client_ip(self.request), **kwargs)
        except rollouts.RolloutStateError as exc:
            raise StateConflict(str(exc))
        except ParamsError as exc:
            raise ValidationError(exc.errors)
        return Response(RolloutSerializer(selectors.rollout_with_waves(rollout.pk)).data)

    @extend_schema(request=None, responses={200: RolloutSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def pause(self, request, id=None):
        """No further wave starts (the current wave's installs go on)."""
        return self._do(rollouts.pause_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def resume(self, request, id=None):
        """A paused rollout goes on; a halted one accepts its halted wave and starts the next."""
        return self._do(rollouts.resume_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator], url_path="retry-failed")
    def retry_failed(self, request, id=None):
        """The current wave's failed devices get the install again; a halted rollout is judged on the new results."""
        return self._do(rollouts.retry_failed)

    @extend_schema(request=RollbackSerializer, responses={200: RolloutSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def rollback(self, request, id=None):
        """Uninstall the app and install the previous release on the devices that got this one (their app data is
        lost: Android does not let a Device Owner downgrade); pending installs are cancelled."""
        data = RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._do(rollouts.rollback_rollout, confirm_data_loss=data.validated_data["confirm_data_loss"])

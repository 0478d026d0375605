"""API of the project layer: the write-behind's dead letters (mdm.deadletters), list and purge,
admins only (a dead letter holds what a device sent, escaped and cut, never raw); and the audit
log, read by admins and operators (not viewers: it names people, addresses and what they changed)."""

from django.core.paginator import Paginator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdmin, IsOperator
from mdm import deadletters, services
from mdm.audit import client_ip
from mdm.audit_filters import AuditFilter, instant
from mdm.models import AuditEvent


class DeadLetterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=deadletters.KINDS, help_text="Which flush set it aside.")
    device_id = serializers.CharField(allow_null=True)
    reason = serializers.CharField(help_text="Why PostgreSQL (or the flush) refused it.")
    at = serializers.IntegerField(help_text="When it was set aside (Unix seconds).")
    size = serializers.IntegerField(help_text="Bytes of the entry as it was queued.")
    entry = serializers.CharField(help_text="The entry as queued, forbidden characters escaped, at most 4,096 characters.")


class PurgedSerializer(serializers.Serializer):
    purged = serializers.IntegerField()


class _Letters:
    """The Redis list as a sequence Django's paginator can count and slice (newest first)."""

    def count(self) -> int:
        return deadletters.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop = index.start or 0, index.stop if index.stop is not None else start + deadletters.MAX_LETTERS
            return deadletters.entries(offset=start, limit=max(0, stop - start))
        return deadletters.entries(offset=index, limit=1)[0]


class _Pagination(PageNumberPagination):
    django_paginator_class = Paginator


class DeadLetterList(GenericAPIView):
    """Entries the heartbeat and result flushes could not write, newest first (at most 10,000
    are kept). Paginated like every list (`page`)."""

    permission_classes = [IsAdmin]
    serializer_class = DeadLetterSerializer
    pagination_class = _Pagination
    filter_backends = []

    @extend_schema(responses=DeadLetterSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(_Letters())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class DeadLetterPurge(APIView):
    """Delete every dead letter (audited)."""

    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses=PurgedSerializer)
    def post(self, request):
        return Response({"purged": services.purge_dead_letters(actor=request.user, ip=client_ip(request))})


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", help_text='"user:<name>", "device:<id>", "key:<name>" or "system".')
    data = serializers.JSONField(help_text="What changed, secrets shown as ***.")

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "action", "target_type", "target_id", "data", "ip"]


class _NewestFirst(CursorPagination):
    # A cursor, not page numbers: no COUNT and no OFFSET over a table of millions of rows.
    ordering = ("-at", "-id")  # the id makes the order within one instant stable, which the cursor relies on
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        # DRF puts the cursor's position into the filter as it came: a crafted one that is no
        # date-time, or has an offset PostgreSQL refuses, was a 500.
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        try:
            return cursor._replace(position=instant(cursor.position).isoformat())
        except ValueError:
            raise NotFound(self.invalid_cursor_message) from None


class AuditEventList(ListAPIView):
    """The audit log, newest first, filtered like the console's page (`actor` contains, `action`
    exact or a prefix ending in ".", `target_type`, `target_id`, `since`/`until`, `q` over actor,
    action, object id and data within the 30 days before `until`, or now, unless `since` is
    given). Paged by cursor: follow `next`. Admins and operators."""

    permission_classes = [IsOperator]
    serializer_class = AuditEventSerializer
    pagination_class = _NewestFirst
    filterset_class = AuditFilter
    queryset = AuditEvent.objects.all()

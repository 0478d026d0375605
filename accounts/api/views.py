from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts import services
from accounts.api.serializers import SetRoleSerializer, UserSerializer
from accounts.permissions import IsAdmin
from mdm.audit import client_ip

User = get_user_model()


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

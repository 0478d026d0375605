from django.contrib.auth import get_user_model
from rest_framework import serializers

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    role = serializers.CharField(source="effective_role", read_only=True)
    pending = serializers.BooleanField(source="is_pending", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "role", "is_active", "pending", "date_joined"]
        read_only_fields = fields


class SetRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=User.Role.choices)


class ApproveSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)


class ActiveSerializer(serializers.Serializer):
    active = serializers.BooleanField()


class ApiKeySerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    prefix = serializers.CharField(read_only=True)
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True)
    revoked_at = serializers.DateTimeField(read_only=True)


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=["apk:upload", "apk:read"]), min_length=1, max_length=2)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown this once, never again.")

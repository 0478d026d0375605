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

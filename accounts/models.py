import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


class User(AbstractUser):
    """A console/API user. The role decides what they may do: viewers read, operators also run
    commands and manage devices, admins also manage users, enrollment keys and fleet settings.
    Superusers count as admins."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        OPERATOR = "operator", "Operator"
        ADMIN = "admin", "Admin"

    RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", blank=True, db_index=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    objects = UserManager()

    @property
    def effective_role(self) -> str:
        return self.Role.ADMIN if self.is_superuser else self.role

    def has_role(self, role: str) -> bool:
        return self.is_active and self.RANK[self.effective_role] >= self.RANK[role]

    @property
    def is_operator_role(self) -> bool:
        return self.has_role(self.Role.OPERATOR)

    @property
    def is_admin_role(self) -> bool:
        return self.has_role(self.Role.ADMIN)

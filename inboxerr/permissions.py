"""Who may call what: authentication, then Django model permissions, then ownership.

Views name the model permissions each method needs in `required_perms`; ownership is enforced
by the selectors every view reads through (a non-superuser's queries only ever see their own
rows, so an outsider gets 404, never a hint that the object exists).
"""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class HasModelPermissions(BasePermission):
    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        required = getattr(view, "required_perms", None)
        if required is None:
            return True
        method = request.method.upper()
        perms = required.get(method)
        if perms is None and method in ("HEAD", "OPTIONS"):
            perms = required.get("GET", ())
        return user.has_perms(perms or ())

"""JSON sign-in for the browser app (session cookie + CSRF) and the current user's identity.

Sign-in is CSRF-protected like any form: the page (GET /) or GET /api/auth/me/ sets the `csrftoken`
cookie and the browser echoes it in the X-CSRFToken header. Scripts use token auth instead
(POST /api/auth/token/).
"""

import hashlib

from django.contrib.auth import authenticate, login, logout
from django.core.cache import cache
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_app.projects.api.serializers import LoginSerializer, MeSerializer
from annotation_app.projects.models import can_create_projects

#: failed sign-ins allowed per (username, client address) within the window, before a 429
MAX_FAILURES = 10
FAILURE_WINDOW_S = 300


def _failure_key(request, username: str) -> str:
    address = request.META.get("REMOTE_ADDR", "")
    return "login-failures:" + hashlib.sha256(f"{username.lower()}|{address}".encode()).hexdigest()


_UserOut = inline_serializer("SignedInUser", {"id": serializers.IntegerField(), "username": serializers.CharField()})


@method_decorator(csrf_protect, name="dispatch")
class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=LoginSerializer, responses={200: _UserOut})
    def post(self, request):
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = _failure_key(request, body.validated_data["username"])
        if cache.get(key, 0) >= MAX_FAILURES:
            return Response(
                {"detail": f"Too many failed sign-ins; try again in {FAILURE_WINDOW_S // 60} minutes."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        user = authenticate(request, **body.validated_data)
        if user is None:
            # Count failures only, so busy but honest users are never slowed down.
            cache.add(key, 0, FAILURE_WINDOW_S)
            cache.incr(key)
            return Response({"detail": "Wrong username or password."}, status=status.HTTP_400_BAD_REQUEST)
        cache.delete(key)
        login(request, user)
        return Response({"id": user.pk, "username": user.get_username()})


class LogoutView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@method_decorator(ensure_csrf_cookie, name="dispatch")
class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        user = request.user
        memberships = user.memberships.select_related("project").order_by("project__name")
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "is_superuser": user.is_superuser,
            "can_create_projects": can_create_projects(user),
            "memberships": memberships,
        }
        return Response(MeSerializer(data).data)

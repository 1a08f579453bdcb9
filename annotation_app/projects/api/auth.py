"""JSON sign-in for the browser app (session cookie + CSRF) and the current user's identity.

Sign-in is CSRF-protected like any form: the page (GET /) or GET /api/auth/me/ sets the `csrftoken`
cookie and the browser echoes it in the X-CSRFToken header. Scripts use token auth instead
(POST /api/auth/token/).
"""

from django.contrib.auth import authenticate, login, logout
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_app.projects.api.serializers import LoginSerializer, MeSerializer

_UserOut = inline_serializer(
    "SignedInUser", {"id": serializers.IntegerField(), "username": serializers.CharField()}
)


@method_decorator(csrf_protect, name="dispatch")
class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(request=LoginSerializer, responses={200: _UserOut})
    def post(self, request):
        body = LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(request, **body.validated_data)
        if user is None:
            return Response({"detail": "Wrong username or password."}, status=status.HTTP_400_BAD_REQUEST)
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
            "memberships": memberships,
        }
        return Response(MeSerializer(data).data)

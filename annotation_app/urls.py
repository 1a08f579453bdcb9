"""URL map: the REST API under /api/, its OpenAPI schema and Swagger UI, the admin, the browser app."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from annotation_app.lib.api_root import api_root
from annotation_app.lib.frontend import frontend_index

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api_root, name="api-root"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/auth/", include("annotation_app.projects.api.auth_urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("api/", include("annotation_app.projects.api.urls")),
    path("api/", include("annotation_app.imaging.api.urls")),
    path("api/", include("annotation_app.rounds.api.urls")),
    path("api/", include("annotation_app.annotations.api.urls")),
    path("api/", include("annotation_app.propagation.api.urls")),
    path("api/", include("annotation_app.timing.api.urls")),
    path("api/", include("annotation_app.pacs.api.urls")),
    path("api/", include("annotation_app.exports.api.urls")),
    path("", frontend_index, name="frontend"),
]

# Unmatched /api/ paths answer JSON like the rest of the API (used when DEBUG is off).
handler404 = "annotation_app.lib.errors.not_found"
# Unhandled errors: a JSON 500 without details under /api/ (Django's debug page is never served in
# production: DEBUG is off there, and gunicorn.conf.py refuses to start with it on).
handler500 = "annotation_app.lib.errors.server_error"

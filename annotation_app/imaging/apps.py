from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "annotation_app.imaging"
    label = "imaging"

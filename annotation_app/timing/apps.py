from django.apps import AppConfig


class TimingConfig(AppConfig):
    name = "annotation_app.timing"
    label = "timing"
    verbose_name = "Time per lesion"

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnnotationsConfig(AppConfig):
    name = "annotation_app.annotations"
    label = "annotations"

    def ready(self):
        from annotation_app.annotations.triggers import on_post_migrate

        # SQLite drops a table's triggers when a migration rebuilds it: put them back after every migrate.
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="annotations-sqlite-append-only")

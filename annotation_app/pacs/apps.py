from django.apps import AppConfig


class PacsConfig(AppConfig):
    name = "annotation_app.pacs"
    label = "pacs"

    def ready(self) -> None:
        # Auto-send on acceptance: listen to the annotations app's signal (it does not know about us).
        from annotation_app.annotations.signals import target_accepted
        from annotation_app.pacs.services import send_on_acceptance

        target_accepted.connect(send_on_acceptance, dispatch_uid="pacs-auto-send")

"""Recompute stored target timings now (readers do it on demand; this warms a big project at once)."""

from django.core.management.base import BaseCommand

from annotation_app.annotations.models import Target
from annotation_app.timing import service
from annotation_app.timing.models import TargetTiming


class Command(BaseCommand):
    help = "Recompute the time per target where its events, jobs or revisions changed (--all: every target)."

    def add_arguments(self, parser):
        parser.add_argument("--project", type=int, help="only this project's targets")
        parser.add_argument("--all", action="store_true", help="recompute even rows that look current")

    def handle(self, *args, **options):
        targets = Target.objects.all()
        if options["project"]:
            targets = targets.filter(case__project=options["project"])
        if options["all"]:
            TargetTiming.objects.filter(target__in=targets).update(fingerprint="")
        count = service.refresh(targets)
        self.stdout.write(f"recomputed {count} target timing(s)")

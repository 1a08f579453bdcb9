"""`python manage.py requeue_stale_jobs [--stale-after SECONDS]`: queue again the propagation jobs whose
worker stopped beating (the same check every worker runs at start and every
PROPAGATION_RECOVERY_INTERVAL_S seconds; see inference_worker/recovery.py)."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Re-queue propagation jobs left running by dead workers (stale heartbeat)."

    def add_arguments(self, parser):
        parser.add_argument("--stale-after", type=float, default=None, help="seconds without heartbeat")

    def handle(self, *args, stale_after=None, **options):
        if stale_after is not None and stale_after <= 0:
            raise CommandError("--stale-after must be a positive number of seconds")
        # recovery.py holds no torch import, so this command stays light.
        from inference_worker.recovery import requeue_stale_jobs

        ids = requeue_stale_jobs(stale_after)
        self.stdout.write(f"requeued {len(ids)} job(s){': ' + ', '.join(map(str, ids)) if ids else ''}")

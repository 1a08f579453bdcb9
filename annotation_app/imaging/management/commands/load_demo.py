"""manage.py load_demo [--small]: the demo project, users, synthetic cases, a closed round with accepted MRI
and echo masks (the learning loop's starting point) and the open round (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from annotation_app.imaging.demo import USERS, demo_password, load_demo
from annotation_app.rounds.demo import seed_learning_loop


class Command(BaseCommand):
    help = (
        "Create the demo project 'Demo CT lesions' with demo users and synthetic CT/MRI/echo/endoscopy cases."
    )

    def add_arguments(self, parser):
        parser.add_argument("--small", action="store_true", help="tiny images (for tests and quick looks)")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options):
        try:
            project = load_demo(small=options["small"], seed=options["seed"], log=self.stdout.write)
            # round 1 closed with accepted MRI and echo masks, so the learning loop can be tried at once
            seed_learning_loop(project, small=options["small"], seed=options["seed"], log=self.stdout.write)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"demo project {project.name!r} (id {project.pk}) is ready")
        for username, role in USERS.items():
            self.stdout.write(f"  user {username} ({role}) password: {demo_password()}")

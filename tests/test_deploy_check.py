"""`manage.py check --deploy` passes with a production environment, and refuses an unsafe one."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "SYSTEMROOT", "TMPDIR")


def production_env(tmp_path, **overrides) -> dict:
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="annotate.example.org",
        CSRF_TRUSTED_ORIGINS="https://annotate.example.org",
        DATABASE_URL="postgres://annotate:secret@postgres:5432/annotate",
        CELERY_BROKER_URL="redis://redis:6379/0",
        ANNOTATION_VAR_DIR=str(tmp_path / "var"),
    )
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )


def test_check_deploy_passes_at_warning_level_with_production_settings(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_flags_a_short_secret_key(tmp_path):
    result = manage(production_env(tmp_path, SECRET_KEY="short"), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def test_production_without_a_secret_key_refuses_to_start_with_one_clear_line(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr

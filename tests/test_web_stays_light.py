"""The web process never imports torch: it enqueues model work by task name."""
import subprocess
import sys
import textwrap


def test_the_web_application_and_the_demo_generator_load_without_torch():
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import django
        django.setup()
        import annotation_app
        for info in pkgutil.walk_packages(annotation_app.__path__, "annotation_app."):
            if ".tests" in info.name or ".migrations" in info.name:
                continue
            importlib.import_module(info.name)
        from medsam2 import synthetic
        synthetic.make_ct_volume(seed=1, shape=(8, 32, 32), n_lesions=1)
        loaded = [name for name in ("torch", "medsam2.modeling", "medsam2.predictor") if name in sys.modules]
        print("LOADED", loaded)
        sys.exit(1 if loaded else 0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "annotation_app.settings", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

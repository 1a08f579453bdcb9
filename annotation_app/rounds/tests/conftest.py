import pytest


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Checkpoints stored by these tests go to a folder of their own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"

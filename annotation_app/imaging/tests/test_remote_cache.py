"""The local copy of a case array kept when storage is remote (S3): a copy cut short is never taken for
the array, and readers never see a half-written one.

The storage here is Django's in-memory storage with no local paths, as on S3, so the cache code is what
runs; its `open()` can be made to break after a number of bytes, as a dropped connection does.
tests/test_storage_s3.py runs the same path against a real S3 endpoint.
"""

import os

import numpy as np
import pytest
from django.core.files.storage import InMemoryStorage, default_storage

from annotation_app.imaging.storage import cache_path, open_case_array
from annotation_app.imaging.tests.conftest import make_ready_case

pytestmark = pytest.mark.django_db


class _Dropped(OSError):
    pass


class _BreakingFile:
    def __init__(self, handle, after: int):
        self.handle, self.left = handle, after

    def read(self, size=-1):
        if self.left <= 0:
            raise _Dropped("connection reset by peer")
        chunk = self.handle.read(min(size if size > 0 else self.left, self.left))
        self.left -= len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


class RemoteLikeStorage(InMemoryStorage):
    break_after: int | None = None

    def path(self, name):
        raise NotImplementedError("no local paths, as on S3")

    def _relative_path(self, name):  # the in-memory tree's own use of path()
        return os.path.relpath(super().path(name), self.location)

    def open(self, name, mode="rb"):
        handle = super().open(name, mode)
        if RemoteLikeStorage.break_after is None:
            return handle
        return _BreakingFile(handle, RemoteLikeStorage.break_after)


@pytest.fixture
def remote_like(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.RemoteLikeStorage"},
    }
    RemoteLikeStorage.break_after = None
    yield
    RemoteLikeStorage.break_after = None


def test_a_copy_cut_short_leaves_no_cache_file_and_the_next_read_gets_the_whole_array(project, remote_like):
    array = np.arange(8 * 32 * 32, dtype=np.int16).reshape(8, 32, 32)
    case = make_ready_case(project, array)
    assert isinstance(default_storage._wrapped, RemoteLikeStorage)
    cache = cache_path(case.image_key)

    RemoteLikeStorage.break_after = 4096  # of 16512 bytes
    with pytest.raises(_Dropped):
        open_case_array(case)
    assert not cache.exists()
    assert [p.name for p in cache.parent.iterdir()] == []  # nor a part under another name

    RemoteLikeStorage.break_after = None
    np.testing.assert_array_equal(open_case_array(case), array)
    assert cache.stat().st_size == default_storage.size(case.image_key)


def test_storing_a_new_array_under_a_key_drops_the_old_local_copy(project, remote_like):
    from annotation_app.imaging.storage import save_case_array

    case = make_ready_case(project, np.zeros((2, 4, 4), dtype=np.int16))
    assert open_case_array(case).sum() == 0
    save_case_array(case, np.ones((2, 4, 4), dtype=np.int16))
    assert open_case_array(case).sum() == 32


def test_deleting_a_case_drops_its_local_copy(project, remote_like):
    from annotation_app.imaging.storage_cleanup import delete_case_files

    case = make_ready_case(project, np.zeros((2, 4, 4), dtype=np.int16))
    open_case_array(case)
    assert cache_path(case.image_key).exists()
    delete_case_files(case)
    assert not cache_path(case.image_key).exists() and not default_storage.exists(case.image_key)

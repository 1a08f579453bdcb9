"""Zip handling: selective extraction for the worker, packing of multi-file uploads."""

import zipfile

import pytest

from annotation_app.imaging.io.archive import check_zip, extract_zip, pack_files
from annotation_app.imaging.io.errors import IngestError
from annotation_app.imaging.limits import Limits


def _archive(path, names):
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, name.encode())
    return path


def test_extraction_can_be_limited_to_the_folders_of_one_series(tmp_path, settings):
    archive = _archive(tmp_path / "a.zip", ["top.nii", "s1/a.dcm", "s1/b.dcm", "s2/c.dcm", "s1/deeper/d.dcm"])
    files = extract_zip(archive, tmp_path / "out", Limits.current(), folders={"s1"})
    assert sorted(p.relative_to((tmp_path / "out").resolve()).as_posix() for p in files) == [
        "s1/a.dcm",
        "s1/b.dcm",
    ]
    top = extract_zip(archive, tmp_path / "out2", Limits.current(), folders={"."})
    assert [p.name for p in top] == ["top.nii"]


def test_several_uploaded_files_are_packed_into_one_stored_zip(tmp_path):
    first, second = tmp_path / "x.mhd", tmp_path / "x.raw"
    first.write_text("header")
    second.write_bytes(b"\0" * 10)
    packed = pack_files([("x.mhd", first), ("x.raw", second)], tmp_path / "upload.zip")
    with zipfile.ZipFile(packed) as archive:
        assert archive.namelist() == ["x.mhd", "x.raw"]
        assert archive.read("x.raw") == b"\0" * 10


def test_a_windows_drive_path_is_refused(tmp_path, settings):
    archive = _archive(tmp_path / "w.zip", ["C:/Windows/evil.dll"])
    with pytest.raises(IngestError, match="absolute path"):
        check_zip(archive, Limits.current())

"""Volume and video reading/writing round trips and the InputError messages."""

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medsam2.io import (
    InputError,
    overlay_masks,
    read_video,
    read_volume,
    write_mask_like,
    write_png_masks,
    write_video,
)


def _volume(shape=(6, 20, 24)):
    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 1000, size=shape).astype(np.int16)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.7, 0.8, 2.5))  # (x, y, z)
    image.SetOrigin((-10.0, 5.0, 30.0))
    return arr, image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_volume_files_round_trip_with_geometry(tmp_path, suffix):
    arr, image = _volume()
    sitk.WriteImage(image, str(tmp_path / f"vol{suffix}"))
    out, ref = read_volume(tmp_path / f"vol{suffix}")
    assert out.shape == (6, 20, 24) and out.dtype == np.int16
    np.testing.assert_array_equal(out, arr)
    np.testing.assert_allclose(ref.GetSpacing(), (0.7, 0.8, 2.5), rtol=1e-6)
    np.testing.assert_allclose(ref.GetOrigin(), (-10.0, 5.0, 30.0), rtol=1e-6)


def test_dicom_folder_is_read_as_one_volume_in_slice_order(tmp_path):
    arr, image = _volume((5, 16, 16))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.42"
    # Written in scrambled file order: the reader must sort by position, not by name.
    for n, k in enumerate([3, 0, 4, 1, 2]):
        sl = image[:, :, k]
        sl.SetMetaData("0008|0060", "CT")
        sl.SetMetaData("0020|000e", series_uid)
        sl.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        sl.SetMetaData("0020|0032", f"-10\\5\\{30 + 2.5 * k}")
        sl.SetMetaData("0020|0013", str(k + 1))
        sl.SetMetaData("0008|0018", f"{series_uid}.{k + 1}")
        writer.SetFileName(str(tmp_path / f"img{n}.dcm"))
        writer.Execute(sl)
    out, ref = read_volume(tmp_path)
    assert out.shape == (5, 16, 16)
    np.testing.assert_array_equal(out, arr)
    assert ref.GetSpacing()[2] == pytest.approx(2.5)


def test_mask_is_written_with_the_reference_geometry(tmp_path):
    _, image = _volume()
    mask = np.zeros((6, 20, 24), np.uint8)
    mask[2:4, 5:9, 6:10] = 1
    path = write_mask_like(mask, image, tmp_path / "sub" / "mask.nii.gz")
    back = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), mask)
    assert back.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), rtol=1e-6)


def test_mask_of_the_wrong_shape_is_rejected(tmp_path):
    _, image = _volume()
    with pytest.raises(InputError, match="does not match"):
        write_mask_like(np.zeros((6, 20, 23), np.uint8), image, tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match="unsupported mask format"):
        write_mask_like(np.zeros((6, 20, 24), np.uint8), image, tmp_path / "m.png")


def test_missing_unsupported_and_unreadable_volumes_raise_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "absent.nii.gz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported volume format"):
        read_volume(tmp_path / "notes.txt")
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="cannot read"):
        read_volume(tmp_path / "broken.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM series"):
        read_volume(tmp_path / "empty")


def test_2d_and_4d_images_are_rejected_as_wrong_dimensionality(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8), np.int16)), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(InputError, match="2D image"):
        read_volume(tmp_path / "flat.nii.gz")
    four = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((3, 8, 8), np.int16))] * 2)
    sitk.WriteImage(four, str(tmp_path / "four.nii.gz"))
    with pytest.raises(InputError, match="4D image"):
        read_volume(tmp_path / "four.nii.gz")


def test_video_round_trip_keeps_frames_and_fps(tmp_path):
    t = np.arange(6, dtype=np.float64)[:, None, None]
    x = np.arange(32, dtype=np.float64)[None, None, :]
    gray = np.broadcast_to(np.clip(40 + 5 * x + 10 * t, 0, 255), (6, 24, 32)).astype(np.uint8)
    codec = write_video(gray, tmp_path / "clip.mp4", fps=12)
    assert codec in ("libx264", "mpeg4")
    frames, fps = read_video(tmp_path / "clip.mp4")
    assert frames.shape == (6, 24, 32, 3) and frames.dtype == np.uint8
    assert fps == pytest.approx(12.0)
    # Lossy, but a smooth ramp survives within a few grey levels.
    assert np.abs(frames[..., 1].astype(int) - gray).mean() < 3


def test_odd_sized_frames_are_padded_to_even_for_yuv420(tmp_path):
    write_video(np.zeros((2, 15, 17, 3), np.uint8), tmp_path / "odd.mp4", fps=25)
    frames, _ = read_video(tmp_path / "odd.mp4")
    assert frames.shape == (2, 16, 18, 3)


def test_frame_folder_is_read_in_name_order(tmp_path):
    for i in (2, 0, 1):
        Image.fromarray(np.full((8, 10, 3), 50 * i, np.uint8)).save(tmp_path / f"{i:03d}.png")
    frames, fps = read_video(tmp_path)
    assert frames.shape == (3, 8, 10, 3) and fps == 25.0
    assert frames[:, 0, 0, 0].tolist() == [0, 50, 100]


def test_bad_videos_raise_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_video(tmp_path / "absent.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="cannot read video"):
        read_video(tmp_path / "junk.mp4")
    (tmp_path / "scan.nii.gz").write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported video format"):
        read_video(tmp_path / "scan.nii.gz")


def test_png_masks_keep_object_ids_as_pixel_values(tmp_path):
    masks = np.zeros((3, 6, 6), np.uint8)
    masks[1, 1:3, 1:3] = 1
    masks[2, 4, 4] = 2
    paths = write_png_masks(masks, tmp_path / "pngs")
    assert [p.name for p in paths] == ["00000.png", "00001.png", "00002.png"]
    back = np.stack([np.asarray(Image.open(p)) for p in paths])
    assert Image.open(paths[0]).mode == "P"
    np.testing.assert_array_equal(back, masks)


def test_overlay_blends_object_colour_only_inside_masks():
    frames = np.full((1, 4, 4), 100, np.uint8)
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, 0, 0] = 1
    out = overlay_masks(frames, masks, alpha=0.5)
    assert out.shape == (1, 4, 4, 3)
    assert out[0, 1, 1].tolist() == [100, 100, 100]
    # palette colour of id 1 is (230, 25, 75): halfway blend with 100.
    assert out[0, 0, 0].tolist() == [165, 62, 88]

"""The files the adversarial corpus must see refused: one builder per way in, each writing its files in
the folder it is given and returning what the upload must answer (test_adversarial_corpus.py runs them).

A builder takes (folder, ctx): `ctx.absolute` and `ctx.relative` reach the sentinel file outside the
upload (the relative one from the upload's staging folder), so a reference that is not refused would
really read it. Add a builder and list it in REFUSED for each new finding."""

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.encaps import encapsulate

from annotation_app.imaging.tests import helpers
from annotation_app.imaging.tests.hostile_writers import (
    VOXELS,
    dicom_file,
    edit_series,
    enhanced_ct,
    faststart_mp4,
    mhd,
    minc2,
    nifti1,
    nifti2,
    nrrd,
    write,
    zip_files,
)

MARKER = b"SENTINEL-c0ffee-outside-the-upload-"
#: from the upload's staging folder (var/tmp/upload-*/files or .../extracted) up to tmp_path
UP = "../../../../"


@dataclass
class Context:
    sentinel: Path
    settings: object

    @property
    def absolute(self) -> str:
        return str(self.sentinel)

    @property
    def relative(self) -> str:
        return UP + "outside/" + self.sentinel.name


@dataclass
class Expect:
    paths: list[Path]
    status: int
    reason: str
    code: str | None = None
    fields: dict = field(default_factory=dict)


# --- 1. references outside the upload (finding 1): refused before any reader runs


def mhd_with_an_absolute_data_file(folder, ctx):
    path = write(folder / "evil.mhd", mhd(data_file=ctx.absolute))
    return Expect([path], 400, "absolute path", "unsafe_reference")


def mhd_with_a_parent_data_file(folder, ctx):
    path = write(folder / "evil.mhd", mhd(data_file=ctx.relative))
    return Expect([path], 400, "outside the header's folder", "unsafe_reference")


def mha_with_an_absolute_data_file(folder, ctx):
    path = write(folder / "evil.mha", mhd(data_file=ctx.absolute))
    return Expect([path], 400, "absolute path", "unsafe_reference")


def mhd_with_a_parent_data_file_in_a_zip(folder, ctx):
    zipped = zip_files(folder / "study.zip", {"scan/evil.mhd": mhd(data_file=ctx.relative), "scan/x.raw": VOXELS})
    return Expect([zipped], 400, "outside the header's folder", "unsafe_reference")


def mhd_with_a_windows_path(folder, ctx):
    path = write(folder / "evil.mhd", mhd(data_file="C:\\Windows\\win.ini"))
    return Expect([path], 400, "absolute path", "unsafe_reference")


def mhd_with_a_list_of_data_files(folder, ctx):
    path = write(folder / "evil.mhd", mhd(data_file="LIST") + ctx.absolute.encode() + b"\n")
    return Expect([path], 400, "several files", "unsupported_layout")


def mhd_with_a_pattern_of_data_files(folder, ctx):
    path = write(folder / "evil.mhd", mhd(data_file=f"{UP}outside/slice%03d.raw 1 2 1"))
    return Expect([path], 400, "several files", "unsupported_layout")


def mhd_whose_data_file_is_not_in_the_upload(folder, ctx):
    path = write(folder / "evil.mhd", mhd(data_file="secret.raw"))
    return Expect([path], 400, "not in the upload", "missing_data_file")


def mhd_hiding_its_data_file_behind_a_wrongly_cased_field(folder, ctx):
    header = mhd(data_file="LOCAL").replace(b"ElementDataFile = LOCAL\n", b"elementdatafile = LOCAL\n")
    path = write(folder / "evil.mhd", header + f"ElementDataFile = {ctx.absolute}\n".encode() + VOXELS)
    return Expect([path], 400, "must be spelled", "corrupt")


def mhd_hiding_its_data_file_behind_a_carriage_return(folder, ctx):
    header = mhd(data_file="LOCAL", extra=f"Comment = x\rElementDataFile = {ctx.absolute}\n")
    path = write(folder / "evil.mhd", header + VOXELS)
    return Expect([path], 400, "control characters", "corrupt")


def nhdr_with_an_absolute_data_file(folder, ctx):
    path = write(folder / "evil.nhdr", nrrd(data_file=ctx.absolute))
    return Expect([path], 400, "absolute path", "unsafe_reference")


def nhdr_with_a_parent_data_file(folder, ctx):
    path = write(folder / "evil.nhdr", nrrd(data_file=ctx.relative).replace(b"data file:", b"datafile:"))
    return Expect([path], 400, "outside the header's folder", "unsafe_reference")


def nrrd_with_an_attached_header_naming_a_data_file(folder, ctx):
    path = write(folder / "evil.nrrd", nrrd(data_file=ctx.absolute) + VOXELS)
    return Expect([path], 400, "absolute path", "unsafe_reference")


def nhdr_with_a_list_of_data_files(folder, ctx):
    path = write(folder / "evil.nhdr", nrrd(data_file="LIST") + ctx.absolute.encode() + b"\n")
    return Expect([path], 400, "several files", "unsupported_layout")


def nhdr_with_a_pattern_of_data_files(folder, ctx):
    path = write(folder / "evil.nhdr", nrrd(data_file=f"{UP}outside/s%03d.raw 1 2 1 2"))
    return Expect([path], 400, "several files", "unsupported_layout")


def nhdr_naming_its_data_file_twice(folder, ctx):
    header = nrrd(data_file="x.raw").replace(b"\n\n", f"\nData File: {ctx.absolute}\n\n".encode())
    path = write(folder / "evil.nhdr", header)
    write(folder / "x.raw", VOXELS)
    return Expect([path, folder / "x.raw"], 400, "twice", "corrupt")


def nifti_single_file_claiming_a_separate_img(folder, ctx):
    path = write(folder / "pair.nii", nifti1((4, 3, 2), data=VOXELS, magic=b"ni1\0"))
    return Expect([path], 400, "separate .img", "unsupported_layout")


def video_playlist_naming_a_server_file(folder, ctx):
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile://{ctx.absolute}\n#EXT-X-ENDLIST\n"
    path = write(folder / "clip.mp4", playlist.encode())
    return Expect([path], 400, "not a readable video", "corrupt")


def minc2_keeping_its_voxels_in_a_server_file(folder, ctx):
    def image(group):
        return group.create_dataset("image", shape=(2, 4, 8), dtype="u1", external=[(ctx.absolute, 0, 64)])

    return Expect([minc2(folder / "evil.mnc", image)], 400, "outside itself", "unsafe_reference")


def minc2_linking_to_another_file(folder, ctx):
    import h5py

    def image(group):
        group["image"] = h5py.ExternalLink(ctx.absolute, "/minc-2.0/image/0/image")

    return Expect([minc2(folder / "evil.mnc", image)], 400, "link to another file", "unsafe_reference")


# --- 5. truncated pixel data, every format: refused in the request


def dicom_slice_with_short_pixel_data(folder, ctx):
    paths = edit_series(folder / "s", lambda ds: setattr(ds, "PixelData", ds.PixelData[:100]), which={3})
    return Expect(paths, 400, "truncated", "truncated")


def dicom_file_cut_inside_its_pixel_data(folder, ctx):
    paths = helpers.dicom_series(folder / "s")
    paths[2].write_bytes(paths[2].read_bytes()[:-600])
    return Expect(paths, 400, "truncated", "truncated")


def enhanced_ct_with_half_its_frames(folder, ctx):
    stored = np.zeros((4, 6, 8), np.uint16)
    path = enhanced_ct(folder / "e.dcm", stored, pixels=stored[:2].tobytes())
    return Expect([path], 400, "truncated", "truncated")


def compressed_dicom_with_fewer_fragments_than_frames(folder, ctx):
    frames = np.zeros((3, 8, 8), np.uint8)
    path = dicom_file(
        folder / "cine.dcm",
        pydicom.uid.UltrasoundMultiFrameImageStorage,
        frames=3,
        bits=8,
        modality="US",
        syntax=pydicom.uid.RLELossless,
        pixels=encapsulate([frames[0].tobytes()]),
    )
    return Expect([path], 400, "truncated", "truncated")


def nifti_declaring_64_cubed_with_100_bytes(folder, ctx):
    path = write(folder / "short.nii", nifti1((64, 64, 64), data=b"\1" * 100))
    return Expect([path], 400, "truncated", "truncated")


def gzipped_nifti_cut_short(folder, ctx):
    full = nifti1((16, 16, 16), data=np.ones(16**3, "<i2").tobytes())
    path = write(folder / "short.nii.gz", gzip.compress(full[: len(full) // 2]))
    return Expect([path], 400, "truncated", "truncated")


def nrrd_with_short_raw_data(folder, ctx):
    path = write(folder / "short.nrrd", nrrd(sizes=(16, 16, 16)) + VOXELS)
    return Expect([path], 400, "truncated", "truncated")


def nrrd_with_short_gzip_data(folder, ctx):
    data = gzip.compress(np.ones(16**3, "<i2").tobytes())
    path = write(folder / "short.nrrd", nrrd(sizes=(16, 16, 16), encoding="gzip") + data[: len(data) // 3])
    return Expect([path], 400, "truncated", "truncated")


def nhdr_with_a_short_data_file(folder, ctx):
    header = write(folder / "short.nhdr", nrrd(sizes=(16, 16, 16), data_file="short.raw"))
    data = write(folder / "short.raw", VOXELS)
    return Expect([header, data], 400, "truncated", "truncated")


def mha_with_short_local_data(folder, ctx):
    path = write(folder / "short.mha", mhd(dims=(16, 16, 16)) + VOXELS)
    return Expect([path], 400, "truncated", "truncated")


def mhd_with_a_short_raw_file(folder, ctx):
    header = write(folder / "short.mhd", mhd(dims=(16, 16, 16), data_file="short.raw"))
    data = write(folder / "short.raw", VOXELS)
    return Expect([header, data], 400, "truncated", "truncated")


def mha_with_a_cut_compressed_stream(folder, ctx):
    stream = zlib.compress(np.arange(16**3, dtype="<i2").tobytes())
    header = mhd(dims=(16, 16, 16), extra=f"CompressedData = True\nCompressedDataSize = {len(stream)}\n")
    path = write(folder / "short.mha", header + stream[: len(stream) // 2])
    return Expect([path], 400, "truncated", "truncated")


def mp4_cut_in_half(folder, ctx):
    path = faststart_mp4(folder / "clip.mp4")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Expect([path], 400, "truncated", "truncated")


def png_frame_cut_short(folder, ctx):
    frames = {f"clip/{i}.png": helpers.png_bytes(np.full((16, 16), 40 * i, np.uint8)) for i in range(3)}
    frames["clip/1.png"] = frames["clip/1.png"][:-30]
    return Expect([zip_files(folder / "frames.zip", frames)], 400, "not a readable image", "corrupt")


# --- 6. spacing: zero, negative, non-finite


def dicom_with_zero_pixel_spacing(folder, ctx):
    paths = edit_series(folder / "s", lambda ds: setattr(ds, "PixelSpacing", [0, 0]))
    return Expect(paths, 400, "PixelSpacing", "invalid_spacing")


def dicom_with_negative_pixel_spacing(folder, ctx):
    paths = edit_series(folder / "s", lambda ds: setattr(ds, "PixelSpacing", [-0.66, -0.66]))
    return Expect(paths, 400, "PixelSpacing", "invalid_spacing")


def dicom_with_negative_slice_thickness(folder, ctx):
    def edit(ds):
        ds.SliceThickness = -2.0
        del ds.ImagePositionPatient, ds.ImageOrientationPatient

    return Expect(edit_series(folder / "s", edit), 400, "SliceThickness", "invalid_spacing")


def dicom_with_negative_spacing_between_slices(folder, ctx):
    paths = edit_series(folder / "s", lambda ds: setattr(ds, "SpacingBetweenSlices", -1.5))
    return Expect(paths, 400, "SpacingBetweenSlices", "invalid_spacing")


def enhanced_ct_with_zero_pixel_spacing_in_its_functional_group(folder, ctx):
    path = enhanced_ct(folder / "e.dcm", np.zeros((3, 6, 8), np.uint16), pixel_spacing=(0.0, 0.0))
    return Expect([path], 400, "PixelSpacing", "invalid_spacing")


def nifti_with_pixdim(value):
    def build(folder, ctx):
        path = write(folder / "bad.nii", nifti1((4, 3, 2), pixdim=(value, 1.0, 1.0), data=VOXELS))
        return Expect([path], 400, "pixdim", "invalid_spacing")

    build.__name__ = f"nifti_with_pixdim_{value}".replace(".", "_").replace("-", "minus_")
    return build


def metaimage_with_spacing(value):
    def build(folder, ctx):
        path = write(folder / "bad.mha", mhd(extra=f"ElementSpacing = {value} 1 1\n") + VOXELS)
        return Expect([path], 400, "ElementSpacing", "invalid_spacing")

    build.__name__ = f"metaimage_with_spacing_{value}".replace(".", "_").replace("-", "minus_")
    return build


def nrrd_with_spacing(value):
    def build(folder, ctx):
        path = write(folder / "bad.nrrd", nrrd(extra=f"spacings: {value} 1 1\n") + VOXELS)
        return Expect([path], 400, "spacing", "invalid_spacing")

    build.__name__ = f"nrrd_with_spacing_{value}".replace(".", "_").replace("-", "minus_")
    return build


def nrrd_with_a_zero_space_direction(folder, ctx):
    extra = "space: left-posterior-superior\nspace directions: (0,0,0) (0,1,0) (0,0,1)\n"
    return Expect([write(folder / "bad.nrrd", nrrd(extra=extra) + VOXELS)], 400, "space direction", "invalid_spacing")


# --- 7. SOP classes: refused by name


def rt_dose(folder, ctx):
    path = dicom_file(folder / "dose.dcm", "1.2.840.10008.5.1.4.1.1.481.2", frames=4, bits=32, modality="RTDOSE")
    return Expect([path], 415, "RT Dose", "unsupported")


def rt_structure_set_alone(folder, ctx):
    path = dicom_file(folder / "rtss.dcm", "1.2.840.10008.5.1.4.1.1.481.3", rows=0, modality="RTSTRUCT")
    return Expect([path], 415, "RT Structure Set", "unsupported")


def structured_report_alone(folder, ctx):
    path = dicom_file(folder / "report.dcm", pydicom.uid.BasicTextSRStorage, rows=0, modality="SR")
    return Expect([path], 415, "Basic Text SR", "unsupported")


def segmentation_uploaded_as_an_image(folder, ctx):
    path = dicom_file(folder / "seg.dcm", "1.2.840.10008.5.1.4.1.1.66.4", frames=2, bits=8, modality="SEG")
    return Expect([path], 415, "import-masks", "unsupported")


def nuclear_medicine_image(folder, ctx):
    path = dicom_file(folder / "nm.dcm", "1.2.840.10008.5.1.4.1.1.20", frames=2, modality="NM")
    return Expect([path], 415, "Nuclear Medicine", "unsupported")


def unknown_sop_class_with_pixels(folder, ctx):
    path = dicom_file(folder / "odd.dcm", "1.2.3.4.5.6.7", modality="OT")
    return Expect([path], 415, "unknown class 1.2.3.4.5.6.7", "unsupported")


def rt_dose_inside_a_ct_study(folder, ctx):
    paths = helpers.dicom_series(folder / "study" / "ct")
    dose = dicom_file(folder / "study" / "dose.dcm", "1.2.840.10008.5.1.4.1.1.481.2", frames=2, bits=32)
    return Expect(
        [zip_tree(folder / "study", folder / "study.zip")], 415, "RT Dose", "unsupported", {"kept": [*paths, dose]}
    )


def zip_tree(folder: Path, dest: Path) -> Path:
    return helpers.zip_folder(folder, dest)


# --- headers checked before any reader: sizes from the header alone


def nifti2_claiming_100000_cubed(folder, ctx):
    path = write(folder / "huge.nii", nifti2((100000, 100000, 100000), data=b"\0" * 64))
    return Expect([path], 413, "100000x100000x100000", "too_large")


def nifti1_claiming_32767_cubed(folder, ctx):
    path = write(folder / "huge.nii", nifti1((32767, 32767, 32767), data=b"\0" * 64))
    return Expect([path], 413, "32767x32767x32767", "too_large")


def gzipped_nifti2_claiming_100000_cubed(folder, ctx):
    path = write(folder / "huge.nii.gz", gzip.compress(nifti2((100000, 100000, 100000), data=b"\0" * 64)))
    return Expect([path], 413, "100000x100000x100000", "too_large")


def nrrd_claiming_100000_cubed(folder, ctx):
    path = write(folder / "huge.nrrd", nrrd(sizes=(100000, 100000, 100000)) + VOXELS)
    return Expect([path], 413, "100000x100000x100000", "too_large")


def metaimage_claiming_100000_cubed(folder, ctx):
    path = write(folder / "huge.mha", mhd(dims=(100000, 100000, 100000)) + VOXELS)
    return Expect([path], 413, "100000x100000x100000", "too_large")


def nifti_of_five_dimensions(folder, ctx):
    path = write(folder / "5d.nii", nifti1((2, 2, 2, 2, 2), data=b"\0" * 64))
    return Expect([path], 415, "5D", "unsupported")


def nifti_with_a_negative_size(folder, ctx):
    path = write(folder / "neg.nii", nifti1((4, -3, 2), data=VOXELS))
    return Expect([path], 400, "negative size", "corrupt")


REFUSED = [
    mhd_with_an_absolute_data_file,
    mhd_with_a_parent_data_file,
    mha_with_an_absolute_data_file,
    mhd_with_a_parent_data_file_in_a_zip,
    mhd_with_a_windows_path,
    mhd_with_a_list_of_data_files,
    mhd_with_a_pattern_of_data_files,
    mhd_whose_data_file_is_not_in_the_upload,
    mhd_hiding_its_data_file_behind_a_wrongly_cased_field,
    mhd_hiding_its_data_file_behind_a_carriage_return,
    nhdr_with_an_absolute_data_file,
    nhdr_with_a_parent_data_file,
    nrrd_with_an_attached_header_naming_a_data_file,
    nhdr_with_a_list_of_data_files,
    nhdr_with_a_pattern_of_data_files,
    nhdr_naming_its_data_file_twice,
    nifti_single_file_claiming_a_separate_img,
    video_playlist_naming_a_server_file,
    minc2_keeping_its_voxels_in_a_server_file,
    minc2_linking_to_another_file,
    dicom_slice_with_short_pixel_data,
    dicom_file_cut_inside_its_pixel_data,
    enhanced_ct_with_half_its_frames,
    compressed_dicom_with_fewer_fragments_than_frames,
    nifti_declaring_64_cubed_with_100_bytes,
    gzipped_nifti_cut_short,
    nrrd_with_short_raw_data,
    nrrd_with_short_gzip_data,
    nhdr_with_a_short_data_file,
    mha_with_short_local_data,
    mhd_with_a_short_raw_file,
    mha_with_a_cut_compressed_stream,
    mp4_cut_in_half,
    png_frame_cut_short,
    dicom_with_zero_pixel_spacing,
    dicom_with_negative_pixel_spacing,
    dicom_with_negative_slice_thickness,
    dicom_with_negative_spacing_between_slices,
    enhanced_ct_with_zero_pixel_spacing_in_its_functional_group,
    *[nifti_with_pixdim(v) for v in (0.0, -0.5, float("nan"), float("inf"))],
    *[metaimage_with_spacing(v) for v in ("0", "-1", "nan", "inf")],
    *[nrrd_with_spacing(v) for v in ("-1", "nan")],
    nrrd_with_a_zero_space_direction,
    rt_dose,
    rt_structure_set_alone,
    structured_report_alone,
    segmentation_uploaded_as_an_image,
    nuclear_medicine_image,
    unknown_sop_class_with_pixels,
    rt_dose_inside_a_ct_study,
    nifti2_claiming_100000_cubed,
    nifti1_claiming_32767_cubed,
    gzipped_nifti2_claiming_100000_cubed,
    nrrd_claiming_100000_cubed,
    metaimage_claiming_100000_cubed,
    nifti_of_five_dimensions,
    nifti_with_a_negative_size,
]

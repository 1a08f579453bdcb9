"""Writers of small image files in every format the corpus attacks, byte by byte where a library would
refuse to write something broken (headers that lie, point elsewhere or are cut short).

Used by hostile_files.py and test_adversarial_corpus.py; no binary fixtures anywhere."""

import struct
import zipfile
from pathlib import Path

import av
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from annotation_app.imaging.tests import helpers


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def zip_files(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def mhd(ndims=3, dims=(4, 3, 2), element="MET_SHORT", data_file="LOCAL", extra="") -> bytes:
    return (
        f"ObjectType = Image\nNDims = {ndims}\nDimSize = {' '.join(map(str, dims))}\n{extra}"
        f"ElementType = {element}\nElementDataFile = {data_file}\n"
    ).encode()


def nrrd(sizes=(4, 3, 2), type_="short", encoding="raw", extra="", data_file=None) -> bytes:
    text = f"NRRD0004\ntype: {type_}\ndimension: {len(sizes)}\nsizes: {' '.join(map(str, sizes))}\n"
    text += f"encoding: {encoding}\nendian: little\n{extra}"
    if data_file is not None:
        text += f"data file: {data_file}\n"
    return (text + "\n").encode()


VOXELS = np.arange(24, dtype="<i2").tobytes()


def nifti1(dims, datatype=4, bitpix=16, pixdim=(1.0, 1.0, 1.0, 1.0), data=b"", magic=b"n+1\0") -> bytes:
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    full = list(dims) + [1] * (7 - len(dims))
    struct.pack_into("<8h", header, 40, len(dims), *full)
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, 1.0, *(list(pixdim) + [1.0] * (7 - len(pixdim))))
    struct.pack_into("<f", header, 108, 352.0)
    struct.pack_into("<f", header, 112, 1.0)
    header[344:348] = magic
    return bytes(header) + data


def nifti2(dims, datatype=16, bitpix=32, pixdim=(1.0, 1.0, 1.0), data=b"") -> bytes:
    header = bytearray(544)
    struct.pack_into("<i", header, 0, 540)
    header[4:12] = b"n+2\0\r\n\x1a\n"
    struct.pack_into("<hh", header, 12, datatype, bitpix)
    full = list(dims) + [1] * (7 - len(dims))
    struct.pack_into("<8q", header, 16, len(dims), *full)
    struct.pack_into("<8d", header, 104, 1.0, *(list(pixdim) + [1.0] * (7 - len(pixdim))))
    struct.pack_into("<q", header, 168, 544)
    struct.pack_into("<d", header, 176, 1.0)
    return bytes(header) + data


def dicom_file(
    path: Path,
    sop_class: str,
    *,
    rows=8,
    columns=8,
    frames=1,
    samples=1,
    photometric="MONOCHROME2",
    bits=16,
    modality="OT",
    pixels: bytes | None = None,
    syntax=ExplicitVRLittleEndian,
    **attributes,
) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = modality, "P"
    if rows:
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
        if samples > 1:
            ds.PlanarConfiguration = 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PixelData = pixels if pixels is not None else bytes(rows * columns * frames * samples * bits // 8)
    for key, value in attributes.items():
        setattr(ds, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def edit_series(folder: Path, edit, which=None, **series) -> list[Path]:
    paths = helpers.dicom_series(folder, **series)
    for index, path in enumerate(paths):
        if which is None or index in which:
            ds = pydicom.dcmread(path)
            edit(ds)
            ds.save_as(path, enforce_file_format=True)
    return paths


def enhanced_ct(
    path: Path,
    stored: np.ndarray,
    *,
    shared_rescale=None,
    per_frame_rescale=None,
    pixel_spacing=(0.5, 0.6),
    pixels: bytes | None = None,
    window=None,
) -> Path:
    """An Enhanced CT instance whose rescale lives only in the functional groups."""
    frames = stored.shape[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.EnhancedCTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "CT", "P"
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames, stored.shape[1], stored.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared, orientation, measures = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = list(pixel_spacing), 2.0
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    if shared_rescale is not None:
        shared.PixelValueTransformationSequence = Sequence([rescale_item(*shared_rescale)])
    if window is not None:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = window
        shared.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    groups = []
    for k in range(frames):
        group, position = Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, 2.0 * k]
        group.PlanePositionSequence = Sequence([position])
        if per_frame_rescale is not None:
            group.PixelValueTransformationSequence = Sequence([rescale_item(*per_frame_rescale[k])])
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
    ds.PixelData = pixels if pixels is not None else stored.astype("<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def rescale_item(slope: float, intercept: float) -> Dataset:
    item = Dataset()
    item.RescaleSlope, item.RescaleIntercept, item.RescaleType = slope, intercept, "HU"
    return item


def faststart_mp4(path: Path, frames: int = 20) -> Path:
    """An H.264 MP4 with its index first (as streaming writers make them), so a cut file still opens."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        rng = np.random.default_rng(0)
        for _ in range(frames):
            rgb = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def minc2(path: Path, image) -> Path:
    """A MINC 2 file (HDF5) whose image dataset is made by `image(group)`."""
    import h5py

    with h5py.File(path, "w") as handle:
        root = handle.create_group("minc-2.0")
        root.attrs["minc_version"] = np.bytes_(b"2.1.0")
        dimensions = root.create_group("dimensions")
        for axis, (dim, n) in enumerate(zip(("zspace", "yspace", "xspace"), (2, 4, 8), strict=True)):
            d = dimensions.create_dataset(dim, data=np.int32(0))
            d.attrs["length"], d.attrs["step"], d.attrs["start"] = np.uint32(n), np.float64(1), np.float64(0)
            d.attrs["direction_cosines"] = np.eye(3)[2 - axis]
        group = root.create_group("image").create_group("0")
        dataset = image(group)
        if dataset is not None:
            dataset.attrs["dimorder"] = np.bytes_(b"zspace,yspace,xspace")
            dataset.attrs["valid_range"] = np.asarray([0.0, 255.0])
        for key, value in (("image-min", 0.0), ("image-max", 255.0)):
            group.create_dataset(key, data=np.full(2, value)).attrs["dimorder"] = np.bytes_(b"zspace")
    return path


def colour_still(path: Path, rgb: np.ndarray, photometric="RGB", instance=1, series=None, sop=None) -> Path:
    from pydicom.pixels import convert_color_space

    pixels = rgb if photometric == "RGB" else convert_color_space(rgb, "RGB", photometric)
    return dicom_file(
        path,
        sop or pydicom.uid.UltrasoundImageStorage,
        rows=rgb.shape[0],
        columns=rgb.shape[1],
        samples=3,
        photometric=photometric,
        bits=8,
        modality="US",
        pixels=np.ascontiguousarray(pixels).tobytes(),
        InstanceNumber=instance,
        **({"SeriesInstanceUID": series} if series else {}),
    )

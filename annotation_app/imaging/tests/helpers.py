"""Builders of small test images in every supported format (bytes on disk, written per test)."""

import io
import zipfile
from pathlib import Path

import av
import numpy as np
import SimpleITK as sitk
from PIL import Image

from annotation_app.imaging.io.dicom_write import write_series


def ct_volume(shape=(6, 24, 32), seed=0) -> np.ndarray:
    """A small HU volume with a bright cube, values exactly representable as int16."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(-100, 100, size=shape).astype(np.int16)
    volume[2:4, 8:16, 10:20] = 300
    return volume


def dicom_series(folder: Path, volume=None, **kwargs) -> list[Path]:
    return write_series(
        ct_volume() if volume is None else volume,
        folder,
        spacing=kwargs.pop("spacing", (2.0, 0.8, 0.7)),
        **kwargs,
    )


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return dest


def nifti(
    path: Path, array: np.ndarray, spacing=(0.9, 0.8, 2.0), direction=None, origin=(0.0, 0.0, 0.0)
) -> Path:
    """array in SimpleITK order (z, y, x) [or (t, z, y, x)]; spacing (x, y, z)."""
    image = sitk.GetImageFromArray(array)
    if image.GetDimension() == 3:
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        if direction is not None:
            image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


def mp4(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """frames (t, y, x) grey or (t, y, x, 3) RGB uint8; sizes must be even for yuv420."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "preset": "ultrafast"}
        for frame in frames:
            rgb = np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else frame
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, project, *paths: Path, **fields):
    """POST /api/cases/upload/ with the files at `paths` (multipart)."""
    handles = [open(p, "rb") for p in paths]
    try:
        data = {"project": project.pk, **fields}
        data["file"] = handles if len(handles) > 1 else handles[0]
        return client.post("/api/cases/upload/", data, format="multipart")
    finally:
        for handle in handles:
            handle.close()


def write_bytes(case, body: bytes, name: str) -> Path:
    """Write a response body to a temporary file that SimpleITK can read by name."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=f"case{case.pk}-"))
    path = folder / name
    path.write_bytes(body)
    return path

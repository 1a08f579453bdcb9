"""Videos (mp4/avi/mov/... through PyAV) and PNG/JPEG frame sequences.

Canonical video arrays are uint8 (t, y, x) when the content is grey (channels agree within a small
tolerance, as in echo), else (t, y, x, 3) RGB (endoscopy).
"""

import re
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from annotation_app.imaging.io.errors import IngestError, too_large
from annotation_app.imaging.io.model import IDENTITY, LoadedImage, Source
from annotation_app.imaging.limits import Limits

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")
#: The one demuxer each suffix may use. Never ffmpeg's guess from the content, which can pick a
#: playlist or manifest format (HLS, DASH, concat) that opens other files named inside the upload;
#: QuickTime's external data references (drefs) stay off.
_DEMUXERS = {
    ".mp4": "mov", ".m4v": "mov", ".mov": "mov", ".avi": "avi", ".mkv": "matroska", ".webm": "matroska",
    ".mpg": "mpeg", ".mpeg": "mpeg",
}  # fmt: skip
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
_GREY_TOLERANCE = 6


def natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def open_video(path: Path, name: str):
    suffix = Path(name).suffix.lower()
    if suffix not in _DEMUXERS:
        raise IngestError(f"{name}: unsupported video file type", status=415, code="unsupported")
    options = {"enable_drefs": "0"} if _DEMUXERS[suffix] == "mov" else {}
    return av.open(str(path), format=_DEMUXERS[suffix], options=options)


def _count_packets(path: Path, name: str) -> tuple[int, bool]:
    """(video packets, whether any is cut off) without decoding: a truncated file is found in the
    request by reading its packets, not in the worker by failing to decode them."""
    count, damaged = 0, False
    try:
        with open_video(path, name) as container:
            for packet in container.demux(container.streams.video[0]):
                if packet.size == 0 and packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                count += 1
                damaged = damaged or packet.is_corrupt
    except (av.FFmpegError, OSError, ValueError):
        damaged = True
    return count, damaged


def probe_video(root: Path, name: str, limits: Limits) -> Source:
    try:
        with open_video(root / name, name) as container:
            if not container.streams.video:
                raise IngestError(f"{name} has no video stream", code="corrupt")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = float(stream.average_rate) if stream.average_rate else None
            frames = stream.frames
            if not frames and stream.duration and stream.time_base and rate:
                frames = int(round(float(stream.duration * stream.time_base) * rate))
            first = next(container.decode(stream), None)
    except IngestError:
        raise
    except (av.FFmpegError, OSError, ValueError, StopIteration) as exc:
        raise IngestError(f"{name} is not a readable video ({exc})", code="corrupt") from None
    if first is None:
        raise IngestError(f"{name} contains no frames", code="empty")
    if width > limits.max_dim or height > limits.max_dim:
        raise too_large(f"{name} is {width}x{height}; the limit is {limits.max_dim} per side")
    if frames and (frames > limits.max_frames or frames * width * height * 3 > limits.max_voxels):
        raise too_large(f"{name} has about {frames} frames of {width}x{height}; that is over the limits")
    packets, damaged = _count_packets(root / name, name)
    if damaged or (frames and packets < frames):
        raise IngestError(
            f"{name} is truncated or damaged: {packets} of {frames or 'its'} frames are complete",
            code="truncated",
        )
    return Source(
        "video",
        "video",
        Path(name).stem,
        [name],
        None,
        {"frame_rate": rate, "frames": frames, "size": [width, height]},
    )


def probe_frames(root: Path, names: list[str], limits: Limits) -> Source:
    names = sorted(names, key=natural_key)
    if len(names) > limits.max_frames:
        raise too_large(f"{len(names)} frames; the limit is {limits.max_frames}")
    size = None
    for name in names:
        try:
            with Image.open(root / name) as image:
                this = image.size
                if max(this) > limits.max_dim:
                    raise too_large(f"frame {name} is {this[0]}x{this[1]}; the limit is {limits.max_dim} per side")
                if size is not None and this != size:
                    raise IngestError(
                        f"frame {name} is {this[0]}x{this[1]} but the first frame is {size[0]}x{size[1]}",
                        code="inconsistent_size",
                    )
                image.load()  # decode now, so a truncated frame is refused in the request
        except IngestError:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise IngestError(f"frame {name} is not a readable image ({exc})", code="corrupt") from None
        size = size or this
    assert size is not None
    if len(names) * size[0] * size[1] * 3 > limits.max_voxels:
        raise too_large(f"the frames hold more than {limits.max_voxels} values")
    folder = str(Path(names[0]).parent)
    return Source(
        "frames", "video", Path(folder).name or Path(names[0]).stem, names, None, {"size": list(size)}
    )


def _finish(frames: list[np.ndarray], rate: float | None, fmt: str, modality: str | None) -> LoadedImage:
    video = np.stack(frames, axis=0)
    sample = video[:: max(1, len(video) // 8)].astype(np.int16)
    grey = (
        int(np.abs(sample[..., 0] - sample[..., 1]).max(initial=0)) <= _GREY_TOLERANCE
        and int(np.abs(sample[..., 1] - sample[..., 2]).max(initial=0)) <= _GREY_TOLERANCE
    )
    if grey:
        # ITU-R BT.601 luma, as the decoder produced RGB from YUV
        video = np.rint(video[..., 0] * 0.299 + video[..., 1] * 0.587 + video[..., 2] * 0.114).astype(
            np.uint8
        )
    return LoadedImage(
        video,
        "video",
        [1.0, 1.0, 1.0],
        [0.0, 0.0, 0.0],
        list(IDENTITY),
        frame_rate=rate,
        modality=modality,
        meta={"dtype": "uint8", "channels": 1 if grey else 3, "source_format": fmt},
    )


def load_video(
    root: Path, source: Source, modality: str | None, limits: Limits, progress=None
) -> LoadedImage:
    name = source.files[0]
    frames: list[np.ndarray] = []
    expected = source.info.get("frames") or 0
    try:
        with open_video(root / name, name) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) > limits.max_frames:
                    raise too_large(f"{name} has more than {limits.max_frames} frames")
                if progress and expected and len(frames) % 16 == 0:
                    progress(min(0.8, 0.8 * len(frames) / expected))
    except IngestError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        if not frames:
            raise IngestError(f"{name} cannot be decoded ({exc})", code="corrupt") from None
    if not frames:
        raise IngestError(f"{name} contains no frames", code="empty")
    return _finish(frames, source.info.get("frame_rate"), Path(name).suffix.lstrip(".").lower(), modality)


def load_frames(root: Path, source: Source, modality: str | None, progress=None) -> LoadedImage:
    frames = []
    for i, name in enumerate(source.files):
        with Image.open(root / name) as image:
            frames.append(np.asarray(image.convert("RGB")))
        if progress and i % 16 == 0:
            progress(0.8 * (i + 1) / len(source.files))
    return _finish(frames, None, "frames", modality)


def write_mp4(path: Path, frames: np.ndarray, fps: float = 25.0, crf: int = 12) -> Path:
    """Encode (t, y, x) grey or (t, y, x, 3) RGB uint8 frames as H.264 (yuv420p, so even sizes)."""
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for frame in frames:
            rgb = np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else frame
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

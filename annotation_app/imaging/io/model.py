"""What the readers produce: a `Source` (found and validated from headers, JSON-describable so the
worker can find it again) and a `LoadedImage` (pixels plus geometry, ready to store)."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Source:
    """One future case inside an upload.

    format: "dicom" | "sitk" | "nibabel" | "video" | "frames"; kind: "volume" | "video"; files: paths
    relative to the extracted upload (DICOM files already in slice order); info: format-specific facts
    found while probing (UIDs, frame count, ...), all JSON-serialisable.
    """

    format: str
    kind: str
    name: str
    files: list[str]
    modality: str | None = None
    info: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "format": self.format,
            "kind": self.kind,
            "name": self.name,
            "files": self.files,
            "modality": self.modality,
            "info": self.info,
        }

    @classmethod
    def from_description(cls, data: dict) -> "Source":
        return cls(
            data["format"],
            data["kind"],
            data["name"],
            list(data["files"]),
            data.get("modality"),
            dict(data.get("info") or {}),
        )


@dataclass
class LoadedImage:
    """Pixels in canonical order plus geometry.

    array: volumes (z, y, x) int16 in LPS orientation (x to the patient's left, y posterior, z superior);
    videos (t, y, x) or (t, y, x, 3) uint8. spacing (z, y, x) mm; origin (x, y, z) mm of voxel (0,0,0);
    direction: 3x3 row-major cosines (SimpleITK convention) of the canonical array.
    meta: viewer/export facts (rescale, default window, source geometry, DICOM references).
    """

    array: np.ndarray
    kind: str
    spacing: list[float]
    origin: list[float]
    direction: list[float]
    frame_rate: float | None = None
    modality: str | None = None
    study_uid: str = ""
    series_uid: str = ""
    meta: dict = field(default_factory=dict)


IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]

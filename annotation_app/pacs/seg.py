"""One accepted mask revision of one target as a DICOM SEG instance (highdicom), referencing the
case's source series (the instances it was built from), on the source grid and in the source study."""

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from annotation_app.annotations.models import MaskRevision, Target
from annotation_app.imaging.exports import ExportError, _source_datasets, canonical_geometry, source_geometry
from annotation_app.imaging.io import geometry


def build_seg(
    target: Target, revision: MaskRevision, series_uid: str, sop_uid: str, series_number: int = 901
) -> pydicom.Dataset:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    case = target.case
    if case.kind != "volume":
        raise ExportError("DICOM SEG is for volumes; a video cannot be sent to a PACS as SEG")
    if revision.voxel_count == 0:
        raise ExportError("the accepted mask is empty; there is nothing to send")
    sources = _source_datasets(case)
    mask = geometry.resample_to(revision.mask().astype(np.uint8), canonical_geometry(case), source_geometry(case))
    model_made = revision.source == "model"
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=f"{target.label} #{target.pk}"[:64],
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=(
            hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if model_made else hd.seg.SegmentAlgorithmTypeValues.MANUAL
        ),
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="MedSAM2", version="2.1-tiny", family=codes.DCM.ArtificialIntelligence
        )
        if model_made
        else None,
        tracking_id=f"target-{target.pk}",
        tracking_uid=generate_uid(),
    )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=mask.astype(bool)[..., None],
        segmentation_type="BINARY",
        segment_descriptions=[description],
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=int(revision.number),
        manufacturer="medsam2-annotate",
        manufacturer_model_name="medsam2-annotate",
        software_versions="0.1.0",
        device_serial_number="0",
        content_label="MASK",
        content_description=f"target {target.pk} revision {revision.number}"[:64],
        series_description=f"MedSAM2 {target.label} #{target.pk}"[:64],
        omit_empty_frames=True,
    )
    return seg

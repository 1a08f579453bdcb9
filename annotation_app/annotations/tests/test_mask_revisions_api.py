"""Mask revisions through the API: frame edits over a base revision, whole packed masks, per-frame RLE."""

import base64
import zlib

import numpy as np
import pytest

from annotation_app.annotations.models import MaskRevision
from annotation_app.lib.maskcodec import decode_slice_rle, encode_slice_rle


def square(shape, frame, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[frame, y0:y1, x0:x1] = True
    return mask


@pytest.mark.django_db
def test_posting_slices_copies_the_current_revision_and_replaces_only_those_frames(target, case, annotator, client_for):
    base = square(case.shape, 1, 2, 5, 2, 6) | square(case.shape, 2, 0, 2, 0, 2)
    MaskRevision.append(target, base, "model")
    new_frame_2 = np.zeros((8, 8), dtype=bool)
    new_frame_2[6:8, 6:8] = True
    body = {"target": target.pk, "slices": {"2": {"rle": encode_slice_rle(new_frame_2)}}}
    response = client_for(annotator).post("/api/mask-revisions/", body)
    assert response.status_code == 201, response.content
    saved = MaskRevision.objects.get(pk=response.json()["id"])
    expected = base.copy()
    expected[2] = new_frame_2
    assert np.array_equal(saved.mask(), expected)
    assert (saved.number, saved.source, saved.author, saved.voxel_count) == (2, "human", annotator, 16)
    target.refresh_from_db()
    assert target.status == "correcting"


@pytest.mark.django_db
def test_an_older_base_revision_is_the_starting_point_when_named(target, case, annotator, client_for):
    first = MaskRevision.append(target, square(case.shape, 0, 0, 2, 0, 2), "model")
    MaskRevision.append(target, square(case.shape, 3, 0, 8, 0, 8), "model")
    body = {"target": target.pk, "base_revision": first.pk, "slices": {"1": {"rle": [0, 64]}}}
    saved = MaskRevision.objects.get(pk=client_for(annotator).post("/api/mask-revisions/", body).json()["id"])
    assert np.array_equal(saved.mask(), square(case.shape, 0, 0, 2, 0, 2) | square(case.shape, 1, 0, 8, 0, 8))
    assert saved.number == 3


@pytest.mark.django_db
def test_a_first_revision_starts_from_an_empty_mask(target, annotator, client_for):
    body = {"target": target.pk, "slices": {"0": {"rle": [0, 1, 63]}}}
    response = client_for(annotator).post("/api/mask-revisions/", body)
    assert response.json()["voxel_count"] == 1
    assert response.json()["bbox"] == [0, 0, 0, 1, 1, 1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slices", "reason"),
    [
        ({"4": {"rle": [64]}}, "frame keys are integers in [0, 3]"),
        ({"x": {"rle": [64]}}, "frame keys are integers"),
        ({"0": {"rle": [60]}}, "sum to 64"),
    ],
)
def test_bad_slices_are_refused_and_nothing_is_stored(target, annotator, client_for, slices, reason):
    response = client_for(annotator).post("/api/mask-revisions/", {"target": target.pk, "slices": slices})
    assert response.status_code == 400
    assert reason in str(response.json()["errors"])
    assert not MaskRevision.objects.filter(target=target).exists()


@pytest.mark.django_db
def test_a_base_revision_of_another_target_is_refused(target, case, open_round, annotator, client_for):
    from annotation_app.annotations.models import Target

    other = Target.objects.create(case=case, label="lesion", round=open_round)
    foreign = MaskRevision.append(other, square(case.shape, 0, 0, 1, 0, 1), "model")
    body = {"target": target.pk, "base_revision": foreign.pk, "slices": {"0": {"rle": [64]}}}
    response = client_for(annotator).post("/api/mask-revisions/", body)
    assert response.status_code == 400
    assert "base_revision" in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("compress", [False, True])
def test_a_whole_mask_may_be_sent_packed_in_base64(target, case, annotator, client_for, compress):
    mask = square(case.shape, 2, 1, 7, 3, 5)
    packed = np.packbits(mask.reshape(-1)).tobytes()
    text = base64.b64encode(zlib.compress(packed) if compress else packed).decode()
    response = client_for(annotator).post(
        "/api/mask-revisions/", {"target": target.pk, "mask_b64": text, "source": "import"}
    )
    assert response.status_code == 201, response.content
    saved = MaskRevision.objects.get(pk=response.json()["id"])
    assert np.array_equal(saved.mask(), mask)
    assert saved.source == "import"


@pytest.mark.django_db
def test_a_packed_mask_of_the_wrong_size_is_refused(target, annotator, client_for):
    text = base64.b64encode(b"\x00" * 7).decode()
    response = client_for(annotator).post("/api/mask-revisions/", {"target": target.pk, "mask_b64": text})
    assert response.status_code == 400
    assert "Expected 32 packed bytes" in response.json()["errors"]["mask_b64"][0]


@pytest.mark.django_db
def test_clients_cannot_claim_a_model_source(target, annotator, client_for):
    body = {"target": target.pk, "source": "model", "slices": {"0": {"rle": [64]}}}
    assert client_for(annotator).post("/api/mask-revisions/", body).status_code == 400


@pytest.mark.django_db
def test_frames_returns_row_major_rle_for_the_asked_range(target, case, annotator, client_for):
    mask = square(case.shape, 1, 2, 5, 2, 6)
    revision = MaskRevision.append(target, mask, "model")
    client = client_for(annotator)
    response = client.get(f"/api/mask-revisions/{revision.pk}/frames/?start=1&stop=3")
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    frames = response.json()
    assert sorted(frames) == ["1", "2"]
    assert np.array_equal(decode_slice_rle(frames["1"], 8, 8), mask[1])
    assert frames["2"] == [64]
    assert len(client.get(f"/api/mask-revisions/{revision.pk}/frames/").json()) == 4
    assert client.get(f"/api/mask-revisions/{revision.pk}/frames/?start=3&stop=2").status_code == 400
    assert client.get(f"/api/mask-revisions/{revision.pk}/frames/?start=a").status_code == 400


@pytest.mark.django_db
def test_the_list_carries_no_mask_bytes(target, case, annotator, client_for):
    MaskRevision.append(target, square(case.shape, 1, 2, 5, 2, 6), "model")
    row = client_for(annotator).get(f"/api/mask-revisions/?target={target.pk}").json()["results"][0]
    assert "data" not in row
    assert row["shape"] == [4, 8, 8] and row["voxel_count"] == 12


@pytest.mark.django_db
def test_an_accepted_target_takes_no_new_revisions(target, case, annotator, reviewer, client_for):
    MaskRevision.append(target, square(case.shape, 1, 2, 5, 2, 6), "human")
    target.submit()
    target.accept(reviewer)
    response = client_for(annotator).post("/api/mask-revisions/", {"target": target.pk, "slices": {"0": {"rle": [64]}}})
    assert response.status_code == 409
    assert MaskRevision.objects.filter(target=target).count() == 1

"""GET /api/cases/{id}/slice/ and /thumbnail/: windowed images, raw int16, orientation, caching."""

import io

import numpy as np
import pytest
from PIL import Image

from annotation_app.imaging.storage import open_case_array
from annotation_app.imaging.tests.conftest import make_ready_case

pytestmark = pytest.mark.django_db


def _url(case, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/cases/{case.pk}/slice/?{query}"


def _png(response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_raw_axial_slices_are_the_stored_int16_values(client_for, annotator, volume_case):
    response = client_for(annotator).get(_url(volume_case, axis="axial", index=3, format="raw"))
    assert response.status_code == 200
    assert response["X-Shape"] == "20,30" and response["X-Dtype"] == "int16"
    values = np.frombuffer(response.content, dtype="<i2").reshape(20, 30)
    np.testing.assert_array_equal(values, open_case_array(volume_case)[3])


def test_sagittal_and_coronal_slices_put_superior_at_the_top(client_for, annotator, volume_case):
    array = open_case_array(volume_case)
    sag = client_for(annotator).get(_url(volume_case, axis="sagittal", index=7, format="raw"))
    cor = client_for(annotator).get(_url(volume_case, axis="coronal", index=5, format="raw"))
    assert sag["X-Shape"] == "6,20" and sag["X-Row-Order"] == "superior-first"
    np.testing.assert_array_equal(np.frombuffer(sag.content, "<i2").reshape(6, 20), array[::-1, :, 7])
    np.testing.assert_array_equal(np.frombuffer(cor.content, "<i2").reshape(6, 30), array[::-1, 5, :])


def test_png_slices_apply_the_requested_window(client_for, annotator, project):
    array = np.full((2, 4, 4), -1000, dtype=np.int16)
    array[0, 0, :] = [-160, 40, 240, 3000]  # abdomen window 40/400: lower edge, centre, upper edge, above
    case = make_ready_case(project, array)
    response = client_for(annotator).get(_url(case, index=0, format="png", wl=40, ww=400))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    row = _png(response)[0]
    # the centre, 127.5, rounds to nearest (half to even) as medsam2.window.apply does for the model
    assert row.tolist() == [0, 128, 255, 255]
    assert response["X-Window"] == "40,400"


def test_presets_name_ct_windows(client_for, annotator, project):
    array = np.zeros((1, 2, 2), dtype=np.int16)
    array[0, 0, 0] = -600  # the centre of the lung window
    case = make_ready_case(project, array)
    response = client_for(annotator).get(_url(case, index=0, preset="lung"))
    assert _png(response)[0, 0] == 128  # 127.5, rounded to nearest (half to even)
    assert response["X-Window"] == "-600,1500"


def test_webp_slices_decode_to_the_slice_size(client_for, annotator, volume_case):
    response = client_for(annotator).get(_url(volume_case, index=1, format="webp"))
    assert response["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(response.content)).size == (30, 20)


def test_video_frames_come_back_in_colour(client_for, annotator, project):
    frames = np.random.default_rng(0).integers(0, 255, size=(3, 8, 10, 3), dtype=np.uint8)
    case = make_ready_case(project, frames, kind="video", modality="ES")
    response = client_for(annotator).get(_url(case, axis="frame", index=2, format="png"))
    np.testing.assert_array_equal(_png(response), frames[2])
    raw = client_for(annotator).get(_url(case, axis="frame", index=2, format="raw"))
    assert raw["X-Dtype"] == "uint8" and raw["X-Shape"] == "8,10,3"


def test_a_matching_etag_gets_304_and_the_response_is_cacheable(client_for, annotator, volume_case):
    client = client_for(annotator)
    first = client.get(_url(volume_case, index=2))
    assert "max-age" in first["Cache-Control"]
    again = client.get(_url(volume_case, index=2), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again.content == b""
    other = client.get(_url(volume_case, index=3), HTTP_IF_NONE_MATCH=first["ETag"])
    assert other.status_code == 200 and other["ETag"] != first["ETag"]


@pytest.mark.parametrize(
    "params, reason",
    [
        ({"axis": "oblique"}, "axis"),
        ({"index": 99}, "between 0 and 5"),
        ({"index": "x"}, "integer"),
        ({"format": "gif"}, "format"),
        ({"ww": 0}, "positive"),
        ({"preset": "spleen-ish"}, "preset"),
    ],
)
def test_bad_slice_parameters_are_400_with_a_reason(client_for, annotator, volume_case, params, reason):
    response = client_for(annotator).get(_url(volume_case, **params))
    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_a_case_still_ingesting_has_no_slices(client_for, annotator, project):
    from annotation_app.imaging.models import Case

    case = Case.objects.create(project=project, name="pending", modality="CT")
    response = client_for(annotator).get(_url(case, index=0))
    assert response.status_code == 409
    assert "not ready" in response.json()["detail"]


def test_outsiders_cannot_see_slices(client_for, outsider, volume_case):
    assert client_for(outsider).get(_url(volume_case, index=0)).status_code == 404


def test_the_thumbnail_is_a_small_png_of_the_middle_slice(client_for, annotator, project):
    array = np.zeros((4, 400, 300), dtype=np.int16)
    array[2] = 1000  # only the middle slice (index 2) is bright
    case = make_ready_case(project, array)
    response = client_for(annotator).get(f"/api/cases/{case.pk}/thumbnail/")
    image = _png(response)
    assert response.status_code == 200 and max(image.shape) == 192
    assert image.min() == 255

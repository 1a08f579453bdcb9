"""Numbers of the intensity mapping checked against values worked out by hand."""

import numpy as np
import pytest
import torch

from medsam2.preprocessing import (
    CT_WINDOWS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize_modality,
    parse_window,
    percentile_uint8,
    to_model_input,
    to_uint8,
    window_ct,
)


def test_ct_windows_hold_the_standard_width_and_level_pairs():
    assert CT_WINDOWS["abdomen"] == (400.0, 40.0)
    assert CT_WINDOWS["lung"] == (1500.0, -600.0)
    assert CT_WINDOWS["brain"] == (80.0, 40.0)
    assert CT_WINDOWS["mediastinum"] == (350.0, 50.0)
    assert CT_WINDOWS["bone"] == (1800.0, 400.0)


def test_abdomen_window_maps_hounsfield_units_to_hand_computed_values():
    # Abdomen window: [-160, 240]; value v -> (v + 160) * 255 / 400, rounded.
    hu = np.array([[[-1000, -160, 0, 40, 100, 240, 1000]]], dtype=np.int16)
    out = window_ct(hu, 400, 40)
    assert out.dtype == np.uint8
    # -160 -> 0, 0 -> 102, 40 -> 127.5 -> 128 (round half to even gives 128), 100 -> 165.75 -> 166
    assert out.tolist() == [[[0, 0, 102, 128, 166, 255, 255]]]


def test_lung_window_maps_air_to_zero_and_minus_600_to_mid_grey():
    # Lung window: [-1350, 150]; -600 -> 750 * 255 / 1500 = 127.5 -> 128; -1000 -> 350*0.17 = 59.5 -> 60
    out = window_ct(np.array([[[-2000.0, -1000.0, -600.0, 150.0]]]), 1500, -600)
    assert out.tolist() == [[[0, 60, 128, 255]]]


def test_window_with_nonpositive_width_is_rejected():
    with pytest.raises(ValueError, match="width"):
        window_ct(np.zeros((1, 2, 2)), 0, 40)


def test_percentile_scaling_uses_only_nonzero_voxels():
    # Non-zero voxels 1..100; half the volume is zero background that must not pull the low percentile.
    vals = np.concatenate([np.zeros(100), np.arange(1, 101)]).reshape(2, 10, 10)
    out = percentile_uint8(vals, lo=0.5, hi=99.5)
    # np.percentile linear: p0.5 of 1..100 = 1 + 0.005*99 = 1.495; p99.5 = 1 + 0.995*99 = 99.505
    p_lo, p_hi = 1.495, 99.505
    expected_50 = round((50 - p_lo) * 255 / (p_hi - p_lo))  # 126
    assert expected_50 == 126
    flat = out.reshape(-1)
    assert flat[:100].tolist() == [0] * 100
    assert flat[100] == 0  # value 1 is below p_lo -> 0
    assert flat[149] == expected_50  # value 50
    assert flat[199] == 255  # value 100 is above p_hi


def test_percentile_scaling_of_all_zero_input_is_all_zero():
    out = percentile_uint8(np.zeros((2, 3, 3), dtype=np.float32))
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3) and int(out.max()) == 0


def test_percentile_scaling_keeps_zero_background_zero():
    vol = np.zeros((1, 4, 4))
    vol[0, 1:3, 1:3] = [[10, 20], [30, 40]]
    out = percentile_uint8(vol, lo=0, hi=100)
    assert out[0, 0, 0] == 0
    # min 10 -> 0, max 40 -> 255, 20 -> 85, 30 -> 170
    assert out[0, 1:3, 1:3].tolist() == [[0, 85], [170, 255]]


def test_to_uint8_defaults_ct_to_the_abdomen_window():
    hu = np.array([[[0, 240]]], dtype=np.int16)
    assert to_uint8(hu, "ct").tolist() == [[[102, 255]]]


def test_to_uint8_accepts_named_and_custom_windows_for_ct():
    hu = np.array([[[0, 40, 80]]], dtype=np.int16)
    assert to_uint8(hu, "CT", "brain").tolist() == [[[0, 128, 255]]]
    # custom (width, level) = (100, 50): [0, 100] -> v * 2.55
    assert to_uint8(hu, "CT", (100, 50)).tolist() == [[[0, 102, 204]]]
    assert to_uint8(hu, "CT", "100,50").tolist() == [[[0, 102, 204]]]


def test_to_uint8_uses_percentiles_for_mri_and_pet():
    vol = np.zeros((1, 4, 4))
    vol[0, 1:3, 1:3] = [[10, 20], [30, 40]]
    mr = to_uint8(vol, "MRI")
    pet = to_uint8(vol, "pet")
    np.testing.assert_array_equal(mr, percentile_uint8(vol))
    np.testing.assert_array_equal(pet, percentile_uint8(vol))


def test_to_uint8_passes_ultrasound_and_endoscopy_frames_through():
    rgb = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    np.testing.assert_array_equal(to_uint8(rgb, "endoscopy"), rgb)
    gray = np.array([[[-5.0, 12.4, 300.0]]])
    assert to_uint8(gray, "US").tolist() == [[[0, 12, 255]]]


def test_to_uint8_rejects_unknown_modalities_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown modality"):
        to_uint8(np.zeros((1, 2, 2)), "XRAYZ")
    with pytest.raises(ValueError, match="shape"):
        to_uint8(np.zeros((2, 2)), "CT")
    with pytest.raises(ValueError, match="shape"):
        to_uint8(np.zeros((1, 2, 2, 2, 2)), "CT")
    with pytest.raises(ValueError, match="window"):
        to_uint8(np.zeros((1, 2, 2)), "CT", "nonsense")


def test_modality_names_are_case_insensitive_with_aliases():
    assert [normalize_modality(m) for m in ["ct", "Mr", "MRI", "pt", "PET", "us", "Endoscopy", "es"]] == [
        "CT",
        "MR",
        "MR",
        "PT",
        "PT",
        "US",
        "ES",
        "ES",
    ]


def test_parse_window_rejects_zero_width():
    with pytest.raises(ValueError):
        parse_window((0, 40))
    assert parse_window("Lung") == (1500.0, -600.0)


def test_model_input_of_grayscale_frames_has_three_normalised_channels():
    frames = np.full((2, 8, 8), 255, dtype=np.uint8)
    frames[1] = 0
    x = to_model_input(frames, 4)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    for c in range(3):
        white = (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        black = (0.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        torch.testing.assert_close(x[0, c], torch.full((4, 4), white))
        torch.testing.assert_close(x[1, c], torch.full((4, 4), black))


def test_model_input_keeps_rgb_channel_order():
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    frames[..., 0] = 255  # pure red
    x = to_model_input(frames, 4)
    torch.testing.assert_close(x[0, 0], torch.full((4, 4), (1 - 0.485) / 0.229))
    torch.testing.assert_close(x[0, 1], torch.full((4, 4), -0.456 / 0.224))


def test_model_input_downsamples_with_antialiasing():
    # A 1-pixel checkerboard shrunk 3x: plain bilinear would hit single pixels (0 or 255, aliasing);
    # the antialiased filter averages them to about mid grey everywhere (within 1/255-ish of 0.5).
    board = (np.indices((12, 12)).sum(0) % 2 * 255).astype(np.uint8)[None]
    x = to_model_input(board, 4)
    unnormalised = x[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    torch.testing.assert_close(unnormalised, torch.full((4, 4), 0.5), atol=0.01, rtol=0)


def test_model_input_rejects_non_uint8_frames():
    with pytest.raises(ValueError, match="uint8"):
        to_model_input(np.zeros((1, 4, 4), dtype=np.float32), 4)


def test_chunked_mapping_equals_the_formula_on_every_slice(monkeypatch):
    import medsam2.window as one_window

    monkeypatch.setattr(one_window, "_CHUNK_VOXELS", 50)  # several slabs of 2 slices each
    vol = np.random.default_rng(0).integers(-1200, 1600, size=(7, 5, 5)).astype(np.int16)
    expected = np.rint((np.clip(vol.astype(np.float64), -160, 240) + 160) * 255 / 400).astype(np.uint8)
    np.testing.assert_array_equal(window_ct(vol, 400, 40), expected)


def test_nan_voxels_map_to_zero():
    vol = np.array([[[np.nan, 240.0]]])
    assert window_ct(vol, 400, 40).tolist() == [[[0, 255]]]
    assert percentile_uint8(np.array([[[np.nan, 1.0, 2.0]]]), 0, 100).tolist() == [[[0, 0, 255]]]

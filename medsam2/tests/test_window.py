"""medsam2.window: the one window (level, width in real units), the one preset table, the one mapping."""

import numpy as np
import pytest

from medsam2.preprocessing import CT_WINDOWS, parse_window, to_uint8, window_ct
from medsam2.window import DEFAULT_PRESET, PRESETS, Window, apply


def test_presets_hold_the_standard_radiology_windows_as_level_and_width():
    table = {name: (w.level, w.width) for name, w in PRESETS.items()}
    assert table == {
        "abdomen": (40.0, 400.0),
        "lung": (-600.0, 1500.0),
        "brain": (40.0, 80.0),
        "bone": (400.0, 1800.0),
        "mediastinum": (50.0, 350.0),
        "liver": (30.0, 150.0),
        "soft_tissue": (50.0, 400.0),
    }
    assert DEFAULT_PRESET == "abdomen"


def test_the_cli_width_level_spelling_is_a_view_of_the_one_table():
    assert CT_WINDOWS == {name: (w.width, w.level) for name, w in PRESETS.items()}
    assert parse_window("liver") == (150.0, 30.0)


@pytest.mark.parametrize("level,width", [(40, 0), (40, -5), (float("nan"), 400), (40, float("inf"))])
def test_a_window_needs_a_positive_finite_width_and_a_finite_level(level, width):
    with pytest.raises(ValueError, match="width"):
        Window(level, width)


def test_a_stored_window_dict_is_read_back_and_a_missing_one_is_the_default_preset():
    assert Window.from_stored({"level": 30, "width": 150, "preset": "x"}) == Window(30.0, 150.0)
    assert Window.from_stored({"preset": "lung"}) == PRESETS["lung"]
    assert Window.from_stored(None) == PRESETS["abdomen"]
    assert Window(30, 150).as_dict() == {"level": 30.0, "width": 150.0}


def test_apply_rounds_to_the_nearest_grey_level_in_real_units():
    # abdomen [-160, 240]: -160 -> 0, 40 -> 127.5 -> 128 (half to even), 100 -> 165.75 -> 166, 240 -> 255
    hu = np.array([[[-1000, -160, 40, 100, 240, 3000]]], dtype=np.int16)
    assert apply(hu, PRESETS["abdomen"]).tolist() == [[[0, 0, 128, 166, 255, 255]]]


def test_a_stored_rescale_is_applied_before_the_window():
    rng = np.random.default_rng(3)
    hu = (rng.integers(-100, 140, size=(5, 9, 9)) * 2).astype(np.int16)  # around the abdomen window
    stored = ((hu.astype(np.float64) + 1024) / 2).astype(np.int16)  # slope 2, intercept -1024
    for win in PRESETS.values():
        np.testing.assert_array_equal(apply(stored, win, 2.0, -1024.0), apply(hu, win))
        np.testing.assert_array_equal(
            to_uint8(stored, "CT", (win.width, win.level), rescale=(2.0, -1024.0)), window_ct(hu, win.width, win.level)
        )
    # ignoring the rescale is a different picture on most voxels
    assert np.mean(apply(stored, PRESETS["abdomen"]) != apply(hu, PRESETS["abdomen"])) > 0.5


def test_mr_percentiles_are_taken_of_real_values():
    rng = np.random.default_rng(4)
    real = rng.integers(1, 4000, size=(4, 8, 8)).astype(np.float64)
    stored = ((real - 1000.0) / 0.5).astype(np.int16)  # real = stored * 0.5 + 1000, never 0
    np.testing.assert_array_equal(to_uint8(stored, "MR", rescale=(0.5, 1000.0)), to_uint8(real, "MR"))


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8])
def test_the_lookup_table_of_integer_arrays_gives_the_formulas_bytes_for_every_value(monkeypatch, dtype):
    import medsam2.window as one_window

    info = np.iinfo(dtype)
    every = np.arange(info.min, info.max + 1).astype(dtype)
    every = np.resize(every, max(every.size, 1 << 16)).reshape(1, -1, 256)  # big enough for the table
    inside = 0
    for win, (slope, intercept), keep_zero in [
        (PRESETS["abdomen"], (1.0, 0.0), False),
        (PRESETS["liver"], (2.0, -1024.0), False),
        (Window(700.0, 900.0), (0.37, 12.5), True),
    ]:
        fast = one_window.scale_to_uint8(every, win.lower, win.upper, keep_zero, slope, intercept)
        monkeypatch.setattr(one_window, "_LUT_MIN_VALUES", 1 << 40)  # the float64 formula only
        slow = one_window.scale_to_uint8(every, win.lower, win.upper, keep_zero, slope, intercept)
        monkeypatch.setattr(one_window, "_LUT_MIN_VALUES", 1 << 16)
        np.testing.assert_array_equal(fast, slow)
        inside += np.count_nonzero((slow > 0) & (slow < 255))
    assert inside > 200  # grey levels inside the windows, not only black and white

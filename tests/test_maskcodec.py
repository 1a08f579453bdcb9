import numpy as np
import pytest

from annotation_app.lib.maskcodec import (
    MaskFormatError,
    decode_mask,
    decode_slice_rle,
    encode_mask,
    encode_slice_rle,
)


def test_it_round_trips_a_mask_through_the_compact_encoding():
    rng = np.random.default_rng(0)
    mask = np.zeros((20, 64, 48), dtype=bool)
    mask[5:12, 10:40, 7:30] = rng.random((7, 30, 23)) > 0.3
    encoded = encode_mask(mask)
    assert encoded.voxel_count == int(mask.sum())
    assert encoded.shape == [20, 64, 48]
    back = decode_mask(encoded.data, encoded.bbox, encoded.shape)
    assert np.array_equal(back, mask)


def test_it_stores_the_tight_bounding_box_with_exclusive_upper_bounds():
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[2, 3, 4] = True
    mask[6, 8, 5] = True
    assert encode_mask(mask).bbox == [2, 3, 4, 7, 9, 6]


def test_it_encodes_a_blob_much_smaller_than_the_raw_volume():
    mask = np.zeros((64, 256, 256), dtype=bool)
    zz, yy, xx = np.ogrid[:64, :256, :256]
    mask[(zz - 32) ** 2 / 100 + (yy - 128) ** 2 / 900 + (xx - 128) ** 2 / 900 < 1] = True
    encoded = encode_mask(mask)
    assert len(encoded.data) < mask.size / 8 / 50  # over 50x smaller than even a bit-packed volume


def test_it_stores_an_empty_mask_as_no_bytes():
    encoded = encode_mask(np.zeros((3, 4, 5), dtype=bool))
    assert encoded.data == b"" and encoded.voxel_count == 0
    assert not decode_mask(b"", encoded.bbox, [3, 4, 5]).any()


def test_it_refuses_masks_that_are_not_3d():
    with pytest.raises(MaskFormatError):
        encode_mask(np.zeros((4, 4), dtype=bool))


def test_it_refuses_corrupt_mask_bytes():
    with pytest.raises(MaskFormatError):
        decode_mask(b"not zlib", [0, 0, 0, 1, 1, 1], [1, 1, 1])


def test_slice_run_lengths_start_with_a_zero_run_and_round_trip():
    mask = np.array([[1, 1, 0], [0, 1, 1]], dtype=bool)
    runs = encode_slice_rle(mask)
    assert runs == [0, 2, 2, 2]
    assert np.array_equal(decode_slice_rle(runs, 2, 3), mask)


def test_slice_run_lengths_that_do_not_cover_the_slice_are_refused():
    with pytest.raises(MaskFormatError):
        decode_slice_rle([1, 2], 2, 3)

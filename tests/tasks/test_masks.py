"""--mask parsing (one-line errors), the masks' geometry, and the raster-prefix test."""
from __future__ import annotations

import pytest
import torch

from genbench.tasks.masks import MaskError, is_raster_prefix, parse_mask


@pytest.mark.parametrize("text, unknown", [
    ("center", [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]),
    ("left-half", [[1, 1, 0, 0]] * 4),
    ("bottom-half", [[0, 0, 0, 0]] * 2 + [[1, 1, 1, 1]] * 2),
    ("border", [[1, 1, 1, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]),
])
def test_masks_leave_the_named_region_unknown(text, unknown):
    known = parse_mask(text).known_mask(2, 4, 4)
    assert known.shape == (2, 1, 4, 4)
    assert torch.equal(~known[0, 0], torch.tensor(unknown, dtype=torch.bool))


def test_random_pixels_unknown_share_and_determinism():
    spec = parse_mask("random-pixels:0.25")
    assert spec.label == "random-pixels:0.25"
    a = spec.known_mask(200, 8, 8, torch.Generator().manual_seed(3))
    b = spec.known_mask(200, 8, 8, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    share = float((~a).float().mean())  # 12800 Bernoulli(0.25): sd 0.004
    assert abs(share - 0.25) < 0.02


@pytest.mark.parametrize("text, says", [
    ("centre", "did you mean 'center'"),
    ("random-pixels", "needs the unknown fraction"),
    ("random-pixels:1.5", "strictly between 0 and 1"),
    ("random-pixels:abc", "needs a number"),
    ("bottom-half:3", "takes no argument"),
    ("zzz", "Choices:"),
])
def test_bad_masks_say_what_to_write_in_one_line(text, says):
    with pytest.raises(MaskError) as err:
        parse_mask(text)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_raster_prefix():
    assert is_raster_prefix(parse_mask("bottom-half").known_mask(1, 8, 8).expand(1, 3, 8, 8))
    for text in ("center", "left-half", "border", "top-half"):
        assert not is_raster_prefix(parse_mask(text).known_mask(1, 8, 8)), text

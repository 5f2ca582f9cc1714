import numpy as np
import pytest

from app.geometry import Rect
from app.raster import Raster


def test_read_outside_bounds_is_zero_and_write_grows():
    raster = Raster(4)
    assert raster.rect.is_empty
    patch = np.full((10, 20, 4), 7, np.uint8)
    raster.write(Rect(100, 50, 20, 10), patch)
    assert raster.rect.contains(Rect(100, 50, 20, 10))
    np.testing.assert_array_equal(raster.read(Rect(100, 50, 20, 10)), patch)
    around = raster.read(Rect(90, 40, 40, 30))
    assert around[:10].sum() == 0 and around[10:20, 10:30].min() == 7


def test_growth_keeps_existing_pixels():
    raster = Raster(1)
    raster.write(Rect(0, 0, 4, 4), np.full((4, 4), 9, np.uint8))
    raster.write(Rect(500, 500, 4, 4), np.full((4, 4), 3, np.uint8))
    assert raster.read(Rect(0, 0, 4, 4)).min() == 9
    assert raster.read(Rect(500, 500, 4, 4)).min() == 3


def test_sparse_layer_costs_its_area_not_the_canvas():
    raster = Raster(4)
    raster.write(Rect(7000, 7000, 768, 768), np.ones((768, 768, 4), np.uint8))
    assert raster.nbytes <= 1.3 * 768 * 768 * 4


def test_trim_and_content_rect():
    raster = Raster(1, np.zeros((100, 100), np.uint8), 10, 10)
    raster.data[20:30, 40:45] = 255
    assert raster.content_rect() == Rect(50, 30, 5, 10)
    raster.trim()
    assert raster.rect == Rect(50, 30, 5, 10)


def test_wrong_shapes_are_rejected():
    with pytest.raises(ValueError):
        Raster(4, np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError):
        Raster(1).write(Rect(0, 0, 2, 2), np.zeros((3, 3), np.uint8))

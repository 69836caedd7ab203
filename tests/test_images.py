"""pyconvx.data.load_image / save_image / save_augmentation_grid and `pyconvx augment-grid`."""
import sys

import numpy as np
import pytest

from pyconvx import augment, cli
from pyconvx.data import load_image, save_augmentation_grid, save_image

Image = pytest.importorskip("PIL.Image")


@pytest.mark.parametrize("shape", [(3, 7, 9), (1, 7, 9)])
def test_png_round_trip(tmp_path, shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    path = tmp_path / "image.png"
    save_image(path, image)
    back = load_image(path)
    assert back.dtype == np.float32 and back.shape == shape
    assert np.abs(back - image).max() <= 0.5 / 255 + 1e-6


def test_greyscale_hw_and_clipping(tmp_path):
    path = tmp_path / "grey.png"
    save_image(path, np.array([[-1.0, 0.0], [0.5, 2.0]]))
    assert Image.open(path).mode == "L"
    np.testing.assert_allclose(load_image(path), [[[0.0, 0.0], [128 / 255, 1.0]]])


def test_jpeg_is_close(tmp_path):
    image = np.full((3, 16, 16), 0.25, np.float32)
    image[0] = 0.75
    path = tmp_path / "image.jpg"
    save_image(path, image)
    assert Image.open(path).format == "JPEG"
    assert np.abs(load_image(path) - image).max() < 0.05


def test_rgba_loses_alpha_and_palette_becomes_rgb(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    loaded = load_image(tmp_path / "rgba.png")
    assert loaded.shape == (3, 4, 5)
    np.testing.assert_allclose(loaded[0], 200 / 255)
    Image.fromarray(rgba[..., :3], "RGB").convert("P").save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png").shape == (3, 4, 5)


def test_bad_paths_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="text.png"):
        load_image(tmp_path / "text.png")
    with pytest.raises(ValueError, match="extension"):
        save_image(tmp_path / "image.unknown", np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match=r"shape \(2, 4, 4\)"):
        save_image(tmp_path / "image.png", np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="finite"):
        save_image(tmp_path / "image.png", np.full((4, 4), np.nan))


def test_without_pillow_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "pyconvx\[images\]"'):
        load_image(tmp_path / "image.png")
    with pytest.raises(ImportError, match="images extra"):
        save_image(tmp_path / "image.png", np.zeros((4, 4)))


def test_augmentation_grid_rows_start_with_the_originals(tmp_path):
    images = np.random.default_rng(0).random((2, 3, 10, 12)).astype(np.float32)
    path = tmp_path / "grid.png"
    tiled = save_augmentation_grid(images, augment.RandomHorizontalFlip(p=1.0), path, copies=3, seed=0)
    assert tiled.shape == (3, 2 * 12 + 2, 4 * 14 + 2)
    np.testing.assert_allclose(tiled[:, 2:12, 2:14], images[0])
    np.testing.assert_allclose(tiled[:, 2:12, 16:28], images[0][:, :, ::-1])
    np.testing.assert_allclose(tiled[:, 14:24, 2:14], images[1])
    assert load_image(path).shape == tiled.shape


def test_augmentation_grid_resizes_originals_and_is_reproducible(tmp_path):
    image = np.random.default_rng(0).random((1, 16, 16)).astype(np.float32)
    crop = augment.RandomCrop(8)
    a = save_augmentation_grid(image, crop, tmp_path / "a.png", copies=2, seed=5)
    b = save_augmentation_grid(image, crop, tmp_path / "b.png", copies=2, seed=5)
    assert a.shape == (1, 12, 32)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="copies"):
        save_augmentation_grid(image, crop, tmp_path / "c.png", copies=0)


def test_cli_augment_grid_writes_a_png_of_the_expected_size(tmp_path, capsys):
    pytest.importorskip("sklearn")
    path = tmp_path / "grid.png"
    assert cli.main(["augment-grid", str(path), "--copies", "2", "--seed", "1", "--height", "20"]) == 0
    assert "grid.png" in capsys.readouterr().out
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (3 * (30 + 2) + 2, 2 * (20 + 2) + 2)

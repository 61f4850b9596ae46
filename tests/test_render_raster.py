"""The raster renderer: known heat maps give known colours at known places; blending, tiling,
colour tables and PNG encoding checked pixel by pixel (matplotlib's own colour maps and Normalize
are the independent reference)."""

import cv2
import matplotlib
import numpy as np
import pytest
from matplotlib.colors import Normalize

from vizkit.plot.colormaps import colormap_table
from vizkit.render import raster
from vizkit.render.encode import encode_png, png_thumbnail


def mpl_colour(cmap: str, value: float, vmin: float, vmax: float) -> np.ndarray:
    """The RGB uint8 colour matplotlib's imshow gives ``value`` (independent reference)."""
    norm = Normalize(vmin=vmin, vmax=vmax)
    return np.asarray(matplotlib.colormaps[cmap](norm(np.float32(value)), bytes=True)[:3])


@pytest.mark.parametrize("cmap", ["jet", "viridis", "gray"])
def test_colour_table_is_matplotlibs_colour_map(cmap):
    table = colormap_table(cmap)
    assert table.shape == (256, 3) and table.dtype == np.uint8 and not table.flags.writeable
    rng = np.random.default_rng(0)
    values = np.concatenate([[0.0, 1.0, 0.5, 1 / 256, 255 / 256], rng.random(200)])
    ours, value_range = raster.colorize(values.astype(np.float32), cmap, 0.0, 1.0)
    assert value_range == (0.0, 1.0)
    for v, colour in zip(values, ours, strict=True):
        np.testing.assert_array_equal(colour, mpl_colour(cmap, v, 0.0, 1.0))


def test_values_are_normalised_over_their_range_and_clipped():
    values = np.array([[-3.0, 1.0], [5.0, 2.0]], np.float32)
    idx, (lo, hi) = raster.color_indices(values)
    assert (lo, hi) == (-3.0, 5.0)
    # (v - lo) / (hi - lo) * 256, floored, 256 -> 255: 0, 128, 255, 160
    np.testing.assert_array_equal(idx, [[0, 128], [255, 160]])
    idx, _ = raster.color_indices(values, vmin=0.0, vmax=2.0)
    np.testing.assert_array_equal(idx, [[0, 128], [255, 255]])
    flat, _ = raster.color_indices(np.full((3, 3), 7.0))
    assert not flat.any()  # a constant map takes the lowest colour, as in matplotlib


def test_known_heat_map_renders_known_colours_at_known_places():
    # A 4x4 map, hot at row 1 / column 2, on a black 4x4 image. side=20 upscales by 5 (odd), so
    # the centre pixel of each 5x5 block samples the map value exactly (bilinear, half-pixel
    # centres).
    heat = np.zeros((4, 4), np.float32)
    heat[1, 2] = 1.0
    heat[3, 0] = 0.5
    image = np.zeros((4, 4, 1), np.float32)
    picture = raster.draw_heatmap(heat, image, side=20)
    px = picture.pixels
    assert px.shape == (20, 20, 3) and px.dtype == np.uint8
    assert picture.notes["range"] == [0.0, 1.0] and picture.notes["scale"] == 5
    centre = lambda r, c: px[5 * r + 2, 5 * c + 2].astype(int)  # noqa: E731
    jet = colormap_table("jet").astype(int)
    # Over black, alpha 0.5: half of the colour, rounded.
    np.testing.assert_allclose(centre(1, 2), np.round(0.5 * jet[255]), atol=1)  # dark red
    np.testing.assert_allclose(centre(3, 0), np.round(0.5 * jet[128]), atol=1)  # green-ish
    np.testing.assert_allclose(centre(0, 0), np.round(0.5 * jet[0]), atol=1)  # dark blue
    assert centre(1, 2)[0] > 50 and centre(1, 2)[2] < 10  # red where the map is hot ...
    assert centre(0, 3)[2] > 50 and centre(0, 3)[0] < 10  # ... blue where it is cold


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_overlay_alpha_blends_image_and_colour(alpha):
    rng = np.random.default_rng(1)
    heat = rng.random((6, 6)).astype(np.float32)
    image = rng.random((6, 6, 3)).astype(np.float32)
    alone = raster.draw_heatmap(heat, None, side=6).pixels.astype(float)  # the colours alone
    blended = raster.draw_heatmap(heat, image, side=6, alpha=alpha).pixels.astype(float)
    base = np.rint(image * 255)
    np.testing.assert_allclose(blended, (1 - alpha) * base + alpha * alone, atol=1.0)


def test_coarse_map_is_stretched_over_the_image():
    heat = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)  # a coarse Grad-CAM-like map
    picture = raster.draw_heatmap(heat, np.zeros((8, 8)), side=8, alpha=1.0)
    jet = colormap_table("jet")
    # Corners clamp to the map's corner values; the image size is kept.
    assert picture.pixels.shape == (8, 8, 3)
    np.testing.assert_array_equal(picture.pixels[0, 0], jet[0])
    np.testing.assert_array_equal(picture.pixels[0, -1], jet[255])
    np.testing.assert_array_equal(picture.pixels[-1, 0], jet[255])
    np.testing.assert_array_equal(picture.pixels[-1, -1], jet[0])


def test_small_images_are_upscaled_nearest_to_a_readable_size():
    image = np.zeros((28, 28), np.float32)
    image[3, 5] = 1.0
    picture = raster.draw_heatmap(np.zeros((28, 28)), image, alpha=0.0)  # the image alone
    factor = picture.notes["scale"]
    assert (
        factor == int(np.ceil(raster.HEATMAP_SIDE / 28)) and picture.pixels.shape[0] == 28 * factor
    )
    white = np.argwhere(picture.pixels[..., 0] == 255)
    assert white.min(axis=0).tolist() == [3 * factor, 5 * factor]  # one crisp block
    assert white.max(axis=0).tolist() == [4 * factor - 1, 6 * factor - 1]


def test_feature_maps_are_tiled_in_channel_order_each_on_its_own_scale():
    maps = np.zeros((2, 3, 5), np.float32)
    maps[..., 1] = 10.0  # constant: lowest colour
    maps[0, 0, 2] = 4.0  # one hot pixel, rest 0
    maps[..., 3] = np.arange(6, dtype=np.float32).reshape(2, 3)
    maps[..., 4] = -1.0  # negative constant
    picture = raster.draw_feature_maps(maps)
    f, gap = picture.notes["scale"], raster.GAP
    assert f == int(np.ceil(raster.TILE_SIDE / 3))
    h, w = 2 * f, 3 * f
    ncols = 3  # ceil(sqrt(5))
    assert picture.pixels.shape == (2 * h + gap, ncols * w + 2 * gap, 3)
    viridis = colormap_table("viridis")

    def tile(i):
        r, c = divmod(i, ncols)
        return picture.pixels[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w]

    assert (tile(1) == viridis[0]).all() and (tile(4) == viridis[0]).all()
    np.testing.assert_array_equal(tile(2)[0, 0], viridis[255])
    np.testing.assert_array_equal(tile(2)[-1, -1], viridis[0])
    # channel 3 is 0..5 over its own range: the last pixel is the top colour
    np.testing.assert_array_equal(tile(3)[-1, -1], viridis[255])
    np.testing.assert_array_equal(tile(3)[0, 0], viridis[0])
    # the unused sixth cell is background
    assert (picture.pixels[h + gap :, 2 * (w + gap) :] == raster.BACKGROUND).all()
    assert picture.notes["channels"] == [0, 4] and picture.notes["of"] == 5


def test_filters_keep_their_gray_levels_and_colours():
    kernels = np.zeros((2, 3, 3, 1), np.float32)
    kernels[0, 1, 1, 0] = 1.0
    kernels[1] = 0.5
    picture = raster.draw_filters(kernels)
    f = picture.notes["scale"]
    assert picture.pixels[f, f].tolist() == [255, 255, 255]
    assert picture.pixels[0, 0].tolist() == [0, 0, 0]
    second = picture.pixels[0, 3 * f + raster.GAP]
    assert second.tolist() == [128, 128, 128]  # 0.5 -> round(127.5) = 128
    rgb = raster.draw_filters(np.ones((1, 2, 2, 3), np.float32) * [1.0, 0.0, 0.5])
    assert rgb.pixels[0, 0].tolist() == [255, 0, 128]


def test_top_activating_rows_follow_units_and_pad_short_rows():
    images = {i: np.full((4, 4, 1), i / 10, np.float32) for i in range(6)}
    images[5][0, 0] = 0.0  # not constant: autoscaled per tile
    result = {"images": images, "rows": [([5, 2], [3.0, 2.0]), ([1], [0.5])], "units": [7, 9]}
    picture = raster.draw_top(result)
    f, gap = picture.notes["scale"], raster.GAP
    side = 4 * f
    assert picture.pixels.shape == (2 * side + gap, 2 * side + gap, 3)
    assert picture.pixels[side - 1, side - 1].tolist() == [255] * 3  # image 5: max of its range
    assert picture.pixels[0, 0].tolist() == [0] * 3
    assert (picture.pixels[side + gap :, side + gap :] == raster.BACKGROUND).all()  # padding
    assert picture.notes["units"] == [7, 9]
    assert picture.notes["top"] == [[[5, 3.0], [2, 2.0]], [[1, 0.5]]]


def test_unknown_kind_and_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="unknown renderer 'nope'; known: filters"):
        raster.render("nope", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"heatmap must have shape \(H, W\)"):
        raster.render("heatmap", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got 1.5"):
        raster.draw_heatmap(np.zeros((2, 2)), np.zeros((2, 2)), alpha=1.5)


def test_png_round_trip_keeps_rgb_order_and_thumbnails_shrink():
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_png(pixels), np.uint8), 1),
                           cv2.COLOR_BGR2RGB)  # fmt: skip
    np.testing.assert_array_equal(decoded, pixels)
    picture = raster.Picture(pixels)
    thumb = cv2.imdecode(np.frombuffer(picture.thumbnail(20), np.uint8), 1)
    assert thumb.shape == (12, 20, 3)
    assert picture.fits(50) and not picture.fits(49)
    again = cv2.imdecode(np.frombuffer(png_thumbnail(picture.png(), 25), np.uint8), 1)
    assert max(again.shape[:2]) == 25


@pytest.mark.parametrize("factor", [1, 2, 5])
@pytest.mark.parametrize("gray", [False, True])
def test_upscaled_png_decodes_to_the_nearest_upscale(factor, gray):
    from PIL import Image

    from vizkit.render.encode import encode_upscaled_png

    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (7, 9) if gray else (7, 9, 3), dtype=np.uint8)
    data = encode_upscaled_png(small, factor)
    want = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)
    # Two independent decoders: libpng through OpenCV, and Pillow's own.
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if not gray:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decoded, want)
    np.testing.assert_array_equal(np.asarray(Image.open(__import__("io").BytesIO(data))), want)
    with pytest.raises(ValueError, match="factor must be a positive int"):
        encode_upscaled_png(small, 0)
    with pytest.raises(ValueError, match="pixels must be uint8"):
        encode_upscaled_png(small.astype(np.float32), 2)


def test_a_heat_map_picture_is_encoded_as_its_blocks_and_is_smaller():
    rng = np.random.default_rng(4)
    picture = raster.draw_heatmap(rng.random((28, 28)), rng.random((28, 28)))
    assert picture.blocks == picture.notes["scale"] == 5
    fast = picture.png()
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(fast, np.uint8), 1), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decoded, picture.pixels)
    assert len(fast) < len(encode_png(picture.pixels))


def test_heat_maps_drawn_together_equal_heat_maps_drawn_one_by_one():
    rng = np.random.default_rng(5)
    maps = rng.normal(size=(6, 7, 7)).astype(np.float32)
    maps[1] = 3.0  # constant: the lowest colour
    maps[2, 0, 0] = np.nan  # ignored by the range, coloured as the lowest value
    maps[3] *= 1e-6  # a tiny range of its own
    images = rng.random((6, 28, 28, 1)).astype(np.float32)
    together = raster.render_many("heatmap", list(maps), list(images))
    for i, picture in enumerate(together):
        alone = raster.draw_heatmap(maps[i], images[i])  # a coarse map, stretched to 28x28
        # Within one level: OpenCV's blend may round a pixel in its vector loop in one array
        # and in its scalar tail in the other.
        np.testing.assert_allclose(picture.pixels.astype(int), alone.pixels.astype(int), atol=1)
        assert picture.notes == alone.notes and picture.blocks == alone.blocks
    columns = rng.random((3, 8, 8, 4)).astype(np.float32)
    no_image = raster.render_many("hypercolumn", list(columns))
    for picture, column in zip(no_image, columns, strict=True):
        np.testing.assert_array_equal(picture.pixels, raster.draw_hypercolumn(column).pixels)
        assert picture.notes["of"] == "channel average"
    # Mixed shapes fall back to one at a time; counts must match.
    mixed = raster.render_many("heatmap", [maps[0], np.zeros((5, 5))], [images[0], images[1]])
    assert [p.pixels.shape for p in mixed] == [(140, 140, 3), (140, 140, 3)]
    with pytest.raises(ValueError, match="got 2 results for 1 images"):
        raster.render_many("heatmap", [maps[0], maps[1]], [images[0]])

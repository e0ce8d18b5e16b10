import numpy as np
import pytest
import torch

from pipeline.enhance.enhance import enhance_image
from pipeline.enhance.learned import ALIGN, LearnedEnhancer, _spans, resolve
from pipeline.metrics.fullref import psnr
from pipeline.models import build
from pipeline.models.weights import save_weights
from tests.conftest import small


@pytest.fixture
def tiny_ffdnet(tmp_path):
    torch.manual_seed(0)
    config = {"channels": 1, "features": 8, "depth": 3}
    model = build("ffdnet", **config)
    path = tmp_path / "tiny.pt"
    save_weights(model, path, name="ffdnet", config=config)
    return str(path)


def test_tiled_output_matches_whole_image(tiny_ffdnet):
    image = small("camera", 128)[:100, :90].astype(np.float32)[:, :, None] / 255
    whole = LearnedEnhancer(tiny_ffdnet, tile=1024)(image)
    tiled = LearnedEnhancer(tiny_ffdnet, tile=64, overlap=12)(image)
    assert tiled.shape == whole.shape == image.shape
    assert psnr(whole, tiled) > 45


@pytest.mark.parametrize("length", [513, 600, 1000, 2048, 5001])
def test_tiles_are_equal_cover_the_image_and_overlap_enough(length):
    spans = _spans(length, 512, 32)
    assert all(size <= 512 for _, size in spans) and len({size for _, size in spans[:-1]}) == 1
    assert all(start % ALIGN == 0 for start, _ in spans)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == length
    assert all(a + size - b >= 64 for (a, size), (b, _) in zip(spans, spans[1:]))
    full_tiles = -(-(length - 64) // (512 - 64)) * 512  # full 512-px tiles: the old layout's work
    assert sum(size for _, size in spans) < full_tiles
    full = _spans(length, 512, 32, full=True)
    assert len(full) == len(spans) and all(size == 512 for _, size in full[:-1]) and full[-1][0] + full[-1][1] == length


def test_a_tile_not_wider_than_twice_the_overlap_is_refused(tiny_ffdnet):
    with pytest.raises(ValueError, match="twice the overlap"):
        LearnedEnhancer(tiny_ffdnet, tile=80, overlap=32)


def test_gray_model_runs_per_channel_on_rgb_and_keeps_uint8(tiny_ffdnet):
    enhancer = LearnedEnhancer(tiny_ffdnet)
    out = enhance_image(enhancer, small("astronaut", 40), {})
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    assert enhancer.model_ref.endswith("tiny.pt")


def test_unknown_bundled_name_lists_what_is_bundled():
    with pytest.raises(FileNotFoundError, match="bundled"):
        resolve("bundled:no-such-model")


def test_gray_sr_model_upscales_luma_and_chroma_of_colour(tmp_path):
    """A luma SR model on RGB: one model pass on Y, chroma upscaled bicubically. A neutral
    grey picture stays neutral (R = G = B), a coloured one keeps its hue."""
    torch.manual_seed(0)
    config = {"channels": 1, "features": 8, "blocks": 1, "batch_norm": False}
    path = tmp_path / "sr.pt"
    save_weights(build("srresnet", **config), path, name="srresnet", config=config)
    enhancer = LearnedEnhancer(str(path))
    calls = []
    original = enhancer.net.forward
    enhancer.net.forward = lambda x: calls.append(x.shape) or original(x)
    grey = np.repeat(small("camera", 24)[:, :, None], 3, axis=2).astype(np.float32) / 255
    out = enhancer(grey)
    assert out.shape == (96, 96, 3) and calls == [(1, 1, 24, 24)]
    assert np.abs(out[:, :, 0] - out[:, :, 1]).max() < 2e-3 and np.abs(out[:, :, 2] - out[:, :, 1]).max() < 2e-3
    red = np.zeros((16, 16, 3), np.float32)
    red[:, :, 0] = 0.8
    out = enhancer(red)[8:-8, 8:-8]
    assert out[:, :, 0].mean() > 0.7 and out[:, :, 1:].max() < 0.1


def test_a_whole_picture_model_is_never_tiled(tmp_path):
    """The transmission dehazer estimates haze on the whole picture: a picture larger than a
    tile goes through in one pass, as the model was trained."""
    torch.manual_seed(0)
    config = {"features": 4, "side": 16}
    path = tmp_path / "dehaze.pt"
    save_weights(build("transmission_dehazer", **config), path, name="transmission_dehazer", config=config)
    enhancer = LearnedEnhancer(str(path), tile=96, overlap=8)
    calls = []
    original = enhancer.net.forward
    enhancer.net.forward = lambda x: calls.append(tuple(x.shape)) or original(x)
    image = small("astronaut", 200).astype(np.float32) / 255
    out = enhancer(image)
    assert calls == [(1, 3, 200, 200)] and out.shape == image.shape

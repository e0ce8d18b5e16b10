import numpy as np
import pytest
import torch

from pipeline.enhance.enhance import enhance_image
from pipeline.enhance.learned import LearnedEnhancer, resolve
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
    tiled = LearnedEnhancer(tiny_ffdnet, tile=48, overlap=12)(image)
    assert tiled.shape == whole.shape == image.shape
    assert psnr(whole, tiled) > 45


def test_gray_model_runs_per_channel_on_rgb_and_keeps_uint8(tiny_ffdnet):
    enhancer = LearnedEnhancer(tiny_ffdnet)
    out = enhance_image(enhancer, small("astronaut", 40), {})
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    assert enhancer.model_ref.endswith("tiny.pt")


def test_unknown_bundled_name_lists_what_is_bundled():
    with pytest.raises(FileNotFoundError, match="bundled"):
        resolve("bundled:no-such-model")

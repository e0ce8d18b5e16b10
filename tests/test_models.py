"""The model zoo: every MODELS entry builds small and keeps its shape contract on tiny (and odd)
inputs; model-specific behaviour (FFDNet's noise map, windowed attention, inpainting keeps
known pixels, curves stay in range, classifier heads); weight files round-trip and refuse
arbitrary pickles; gradients flow; cost counters agree with hand counts.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.labels import DEGRADATIONS, DOMAINS
from pipeline.models import MODELS, ModelSpec, build, count_parameters, example_inputs
from pipeline.models.cost import macs_per_pixel, ms_per_megapixel
from pipeline.models.denoise import FFDNet, NonLocalBlock, OpponentFFDNet, deepen_body, deepen_state, estimate_sigma
from pipeline.models.layers import gaussian_blur
from pipeline.models.weights import load_weights, read_meta, save_weights

# Small settings per entry: a new MODELS entry without one fails `test_small_settings_cover_zoo`.
SMALL: dict[str, dict] = {
    "dncnn": dict(features=8, depth=4),
    "ffdnet": dict(features=8, depth=4),
    "ffdnet_color": dict(features=8, depth=4),
    "ffdnet_opponent": dict(features=8, depth=4),
    "nlrn": dict(features=8, steps=2),
    "dense_ae": dict(hidden=(32, 8)),
    "conv_ae": dict(features=8),
    "srresnet": dict(features=8, blocks=2),
    "srgan_d": dict(features=4),
    "attentive_gan": dict(features=8, ae_features=8, steps=2, blocks=1),
    "attentive_d": dict(features=4),
    "lowlight_cnn": dict(features=8, depth=4, iterations=2),
    "mirnet_lite": dict(features=8, blocks=1),
    "dehaze_net": dict(features=4),
    "transmission_dehazer": dict(features=4, side=16, work=32),
    "inpaint": dict(features=8),
    "resnet_multitask": dict(width=8),
    "resnet_single": dict(width=8),
    "stats_mlp": dict(hidden=8),
    "stats_cnn": dict(hidden=8, width=4, side=32),
}
# Input size per entry: odd sizes wherever the model pads internally.
SIZES = {"dense_ae": (28, 28), "srgan_d": (32, 32), "resnet_multitask": (32, 32),
         "resnet_single": (32, 32), "srresnet": (17, 19)}
ODD = (33, 35)

torch.set_num_threads(1)


def _small(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build(name, **SMALL[name]).eval()


def _run(name: str, height: int, width: int) -> tuple[tuple[torch.Tensor, ...], object]:
    inputs = example_inputs(name, 1, height, width)
    with torch.no_grad():
        return inputs, _small(name)(*inputs)


def test_small_settings_cover_zoo():
    assert set(SMALL) == set(MODELS)
    assert all(spec.name == key for key, spec in MODELS.items())


@pytest.mark.parametrize("name", [n for n, s in MODELS.items() if s.kind not in ("gan", "classifier")])
def test_enhancers_keep_shape(name):
    spec = MODELS[name]
    h, w = SIZES.get(name, ODD)
    inputs, out = _run(name, h, w)
    if isinstance(out, tuple):  # attentive_gan: (output, attention maps)
        out, maps = out
        assert all(m.shape == (1, 1, h, w) and 0 <= m.min() and m.max() <= 1 for m in maps)
    assert out.shape == (1, spec.channels, h * spec.scale, w * spec.scale)
    assert torch.isfinite(out).all()


def test_discriminators_return_logits_and_map():
    _, logit = _run("srgan_d", 32, 32)
    assert logit.shape == (1, 1) and torch.isfinite(logit).all()
    _, (logit, attention) = _run("attentive_d", *ODD)
    assert logit.shape == (1, 1) and attention.shape == (1, 1, 9, 9)
    assert 0 <= attention.min() and attention.max() <= 1


@pytest.mark.parametrize("depth", [18, 50])
def test_multitask_classifier_heads(depth):
    torch.manual_seed(0)
    model = build("resnet_multitask", depth=depth, width=8).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out["domain"].shape == (2, len(DOMAINS))
    assert out["degradation"].shape == (2, len(DEGRADATIONS))
    single = build("resnet_single", depth=depth, width=8, classes=5).eval()
    assert single(torch.rand(1, 3, 32, 32)).shape == (1, 5)


def test_bad_names_and_settings_fail_loudly():
    with pytest.raises(KeyError, match="known: .*dncnn"):
        build("no_such_model")
    with pytest.raises(ValueError, match="depth"):
        build("resnet_single", depth=20)
    with pytest.raises(ValueError, match="scale"):
        build("srresnet", scale=3)
    with pytest.raises(ValueError, match="kind"):
        ModelSpec("x", build, (), 1, "magic")


def test_estimate_sigma_on_flat_noise():
    gen = torch.Generator().manual_seed(0)
    x = 0.5 + torch.randn(2, 1, 64, 65, generator=gen) * torch.tensor([0.02, 0.1]).view(2, 1, 1, 1)
    assert torch.allclose(estimate_sigma(x), torch.tensor([0.02, 0.1]), rtol=0.1)


def test_ffdnet_noise_map_matters():
    model = _small("ffdnet")
    x = example_inputs("ffdnet", 2, *ODD)[0]
    with torch.no_grad():
        low, high = model(x, torch.full((2,), 5 / 255)), model(x, torch.full((2,), 50 / 255))
        as_map = model(x, torch.full((2, 1, 1, 1), 5 / 255))
        blind = model(x)
    assert not torch.allclose(low, high)
    assert torch.equal(low, as_map)
    assert blind.shape == x.shape
    with pytest.raises(ValueError, match="sigma"):
        model(x, torch.zeros(3))


def _trained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random batch-norm statistics and affine parameters, as a trained trunk has."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.5)
    return model.eval()


@pytest.mark.parametrize("name,small,large", [("ffdnet", 4, 7), ("ffdnet", 5, 16), ("dncnn", 3, 5)])
def test_deepened_trunk_computes_the_same_function(name, small, large):
    torch.manual_seed(0)
    model = _trained_like(build(name, features=8, depth=small))
    x = torch.rand(2, 1, 20, 20)
    grown = deepen_state(name, {"features": 8, "depth": small}, model.state_dict(), {"features": 8, "depth": large})
    deep = build(name, features=8, depth=large)
    deep.load_state_dict(grown)
    deep.eval()
    convs = [m for m in deep.body if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == large
    with torch.no_grad():
        torch.testing.assert_close(deep(x), model(x), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(deep(x), build(name, features=8, depth=large).eval()(x), atol=1e-3)


def test_deepen_refuses_what_it_cannot_grow():
    state = build("ffdnet", features=8, depth=4).state_dict()
    assert deepen_state("ffdnet", {"features": 8, "depth": 4}, state, {"features": 16, "depth": 6}) is None
    assert deepen_state("ffdnet", {"features": 8, "depth": 4}, state, {"features": 8, "depth": 4}) is None
    with pytest.raises(ValueError, match="batch-norm"):
        deepen_body(build("ffdnet", features=8, depth=4, batch_norm=False).body, 6)
    with pytest.raises(ValueError, match="down to"):
        deepen_body(build("ffdnet", features=8, depth=6).body, 4)


def test_calibrated_growth_starts_training_mode_close_to_the_small_model():
    """In training mode batch norm uses the batch's statistics: calibrated on real inputs the new
    blocks stay near the identity there too, while with batch norm's default statistics they do not."""
    torch.manual_seed(0)
    small = _trained_like(build("ffdnet", features=16, depth=5))
    x, sigma = torch.rand(32, 1, 24, 24), torch.rand(32) * 0.2
    for m in small.modules():  # running statistics of this data, as training leaves them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        small.train()(x, sigma)
    small.eval()
    config, target = {"features": 16, "depth": 5}, {"features": 16, "depth": 9}

    def deep(inputs):
        model = build("ffdnet", **target)
        model.load_state_dict(deepen_state("ffdnet", config, small.state_dict(), target, inputs=inputs))
        return model.train()

    with torch.no_grad():
        reference = small.train()(x, sigma)
        uncalibrated = (deep(None)(x, sigma) - reference).abs().mean()
        calibrated = (deep(lambda: (x, sigma))(x, sigma) - reference).abs().mean()
    assert calibrated < 0.5 * uncalibrated


def test_opponent_transform_keeps_noise_white_and_round_trips():
    """The transform is orthonormal (white RGB noise stays white, same sigma per channel) and,
    with a trunk that removes nothing, the model returns its input."""
    m = build("ffdnet_opponent", **SMALL["ffdnet_opponent"]).eval()
    unscaled = m.to_opp / m.scale[:, None]
    assert torch.allclose(unscaled @ unscaled.T, torch.eye(3), atol=1e-6)
    noise = torch.randn(3, 200_000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert torch.allclose((unscaled @ noise).std(dim=1), torch.full((3,), 0.1), rtol=0.02)
    last = m.body[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    x = torch.rand(2, 3, 16, 18, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(m(x), x, atol=1e-5)
    with pytest.raises(ValueError, match="expects"):
        m(x[:, :1])


def test_opponent_ffdnet_beats_gray_per_channel_with_the_gray_weights():
    """The bundled gray weights load into the opponent model as they are, and on a noisy colour
    picture it removes more noise than the same weights on R, G and B one by one."""
    from skimage import data

    from pipeline.metrics.fullref import psnr

    gray = load_weights(Path(__file__).parents[1] / "pipeline" / "weights" / "ffdnet_gray.pt")
    opponent = OpponentFFDNet()
    opponent.load_state_dict(gray.state_dict())
    opponent.eval()
    clean = torch.from_numpy(data.astronaut()[:128, 128:256].transpose(2, 0, 1).copy()).float()[None] / 255
    noisy = (clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * 25 / 255).clamp(0, 1)
    with torch.no_grad():
        per_channel = gray(noisy.reshape(3, 1, 128, 128)).reshape(1, 3, 128, 128).clamp(0, 1)
        together = opponent(noisy).clamp(0, 1)
    gain = {name: psnr(clean[0].numpy(), y[0].numpy()) for name, y in
            {"together": together, "per_channel": per_channel, "noisy": noisy}.items()}
    assert gain["together"] > gain["per_channel"] + 0.5 > gain["noisy"] + 5, gain


def test_ffdnet_bf16_channels_last():
    """The training speed-ups from STACK-NOTES (bf16 autocast, channels_last) run through."""
    model = FFDNet(channels=3, features=8, depth=3).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 16, 16).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, torch.full((2,), 0.1))
    assert out.shape == x.shape and torch.isfinite(out.float()).all()


def test_non_local_windows_match_global_attention_per_window():
    torch.manual_seed(0)
    block = NonLocalBlock(4, window=8)
    torch.nn.init.normal_(block.out.weight)  # the zero init would make every output equal x
    x = torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        windowed = block(x)
        block.window = None
        per_window = block(x[..., 8:, :8])
    assert torch.allclose(windowed[..., 8:, :8], per_window, atol=1e-5)
    small = NonLocalBlock(4, max_positions=64)  # 9x11 > 64 positions: windows of 8, padded
    assert small(torch.rand(1, 4, 9, 11)).shape == (1, 4, 9, 11)


def test_inpaint_keeps_known_pixels():
    (image, mask), out = _run("inpaint", *ODD)
    keep = mask.expand_as(image) == 0
    assert torch.equal(out[keep], image[keep])
    assert not torch.equal(out, image)


def test_lowlight_curves_stay_in_range():
    (x,), out = _run("lowlight_cnn", *ODD)
    assert 0 <= out.min() and out.max() <= 1


def test_dehazer_starts_as_the_identity_and_follows_its_k_map():
    """Untrained, K = 1 and the picture passes through; once K moves, J = K (I - 1) + 1."""
    from pipeline.models.dehaze import ScatteringDehazer

    x = torch.rand(2, 3, 33, 35)
    model = ScatteringDehazer(features=4).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), x)
        torch.nn.init.normal_(model.head.weight, std=0.5)
        k = model.k_map(x)
        assert k.shape == x.shape and float((k - 1).abs().mean()) > 1e-3
        torch.testing.assert_close(model(x), k * (x - 1) + 1)


def test_transmission_dehazer_inverts_the_scattering_model_with_its_estimate():
    """Untrained it applies t = 0.525, A = 0.85; given the true t and A of a hazed picture, its
    full-size inversion gives the clear picture back (t is estimated small and enlarged)."""
    from pipeline.models.dehaze import TransmissionDehazer

    model = TransmissionDehazer(features=4, side=16).eval()
    torch.manual_seed(0)
    clear = torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(clear), (clear - 0.85) / 0.525 + 0.85)
        t_small = torch.linspace(0.3, 0.9, 16).view(1, 1, 16, 1).expand(1, 1, 16, 16)
        airlight = torch.tensor([[0.8, 0.85, 0.9]])
        t_full = F.interpolate(t_small, size=(48, 40), mode="bilinear", align_corners=False)
        hazy = clear * t_full + airlight[:, :, None, None] * (1 - t_full)
        model.estimate = lambda x: (t_small, airlight)
        torch.testing.assert_close(model(hazy), clear)
    with pytest.raises(ValueError, match="multiple of 8"):
        TransmissionDehazer(side=60)
    with pytest.raises(ValueError, match="multiple of side"):
        TransmissionDehazer(side=16, work=40)


def test_transmission_dehazer_cells_keep_the_cues_area_averaging_erases():
    """With `work`, each estimator cell also carries its darkest and brightest value and its
    luma spread: one black pixel in a grey cell shows in the dark view, not in the mean."""
    from pipeline.models.dehaze import TransmissionDehazer

    x = torch.full((1, 3, 32, 32), 0.6)
    x[0, :, 5, 9] = 0.0  # in cell (2, 4) of the 16 x 16 grid: 2 x 2 pixels per cell at work 32
    mean, dark, bright, spread = TransmissionDehazer(features=4, side=16, work=32)._views(x)
    assert mean.shape == (1, 3, 16, 16) and dark.shape == bright.shape == spread.shape == (1, 1, 16, 16)
    assert float(dark[0, 0, 2, 4]) == 0.0 and float(mean[0, 0, 2, 4]) == pytest.approx(0.45)
    assert float(dark.flatten().sort().values[1]) == pytest.approx(0.6)  # every other cell
    assert float(bright.max()) == pytest.approx(0.6) and float(spread[0, 0, 2, 4]) > 0.2
    assert float(spread.flatten().sort().values[-2]) == pytest.approx(0.0, abs=1e-3)


def test_attentive_gan_post_blur_smooths():
    model = _small("attentive_gan")
    x = example_inputs("attentive_gan", 1, 32, 32)[0]
    with torch.no_grad():
        sharp, _ = model(x)
        model.post_blur_sigma = 1.5
        blurred, _ = model(x)
    def tv(t: torch.Tensor) -> float:
        return float((t[..., 1:, :] - t[..., :-1, :]).abs().mean())
    assert tv(blurred) < tv(sharp)
    assert torch.equal(gaussian_blur(x, 0.0), x)


def test_weights_round_trip(tmp_path):
    model = _small("ffdnet_color")
    model.train()
    model(*example_inputs("ffdnet_color", 2, 16, 16))  # move the BN running stats off their init
    model.eval()
    path = tmp_path / "w" / "ffdnet_color.pt"
    meta = save_weights(model, path, name="ffdnet_color", config=SMALL["ffdnet_color"], extra={"psnr": 30.1})
    assert read_meta(path) == meta and meta["parameters"] == count_parameters(model)
    inputs = example_inputs("ffdnet_color", 1, *ODD)
    expected = model(*inputs)
    for source, given in ((path, None), (path.read_bytes(), meta), (io.BytesIO(path.read_bytes()), meta)):
        loaded = load_weights(source, given)
        assert not loaded.training and torch.equal(loaded(*inputs), expected)
    with pytest.raises(ValueError, match="meta"):
        load_weights(path.read_bytes())


def test_save_refuses_config_that_does_not_rebuild(tmp_path):
    with pytest.raises(ValueError, match="does not match"):
        save_weights(_small("dncnn"), tmp_path / "w.pt", name="dncnn", config={"features": 16, "depth": 4},
                     extra={})


TRIPPED: list[str] = []


def _trip() -> str:
    TRIPPED.append("code ran")
    return "pwned"


class _Payload:
    """Unpickling this calls `_trip`: stands for any code hidden in a weights file."""

    def __reduce__(self):
        return (_trip, ())


def test_load_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"body.0.weight": torch.zeros(1), "payload": _Payload()}, path)
    meta = {"name": "dncnn", "config": SMALL["dncnn"]}
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        load_weights(path, meta)
    assert TRIPPED == []


def test_dncnn_one_step_reduces_loss():
    torch.manual_seed(0)
    model = build("dncnn", features=8, depth=4)
    clean = torch.rand(4, 1, 16, 16)
    noisy = clean + 0.1 * torch.randn_like(clean)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = torch.nn.functional.mse_loss(model(noisy), clean)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    opt.step()
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(model(noisy), clean).item()
    assert after < loss.item()


def test_macs_match_hand_count():
    c, f, d = 1, 8, 4
    dncnn = build("dncnn", features=f, depth=d)
    assert macs_per_pixel(dncnn, c, side=16) == 9 * (c * f + (d - 2) * f * f + f * c)
    ffdnet = build("ffdnet", features=f, depth=d)
    per_pixel = 9 * (5 * c * f + (d - 2) * f * f + f * 4 * c) / 4
    assert macs_per_pixel(ffdnet, c, side=16, needs_sigma=True) == per_pixel
    nlrn = build("nlrn", features=f, steps=1)
    convs = 9 * (c * f + 2 * f * f + f * c) + 4 * f * (f // 2)  # 3 + 1 1x1 convs in the block
    attention = 2 * (16 * 16) * (f // 2)  # two matmuls over 256 keys, per pixel
    assert macs_per_pixel(nlrn, c, side=16) == convs + attention


def test_ms_per_megapixel_runs():
    ms = ms_per_megapixel(_small("inpaint"), 3, side=32, repeats=1, threads=1, needs_mask=True)
    assert ms > 0


def test_conv_autoencoder_learns_sparse_strokes_instead_of_going_black():
    """MNIST-like data (white strokes on black): the sigmoid-output version went all black
    within 40 Adam steps and never recovered; the linear output learns to denoise."""
    import cv2
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    digits = np.zeros((256, 1, 28, 28), np.float32)
    for d in digits:
        for _ in range(2):
            p = rng.integers(4, 24, 4)
            cv2.line(d[0], (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), 1.0, 2)
    clean = torch.from_numpy(digits)
    torch.manual_seed(0)
    model = build("conv_ae", features=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        y = clean[torch.randint(0, 256, (32,), generator=g)]
        x = (y + 0.1 * torch.randn(y.shape, generator=g)).clamp(0, 1)
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x = (clean + 0.1 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        out = model(x)
    assert out.min() >= 0 and out.max() <= 1  # clamped in eval mode
    black = F.mse_loss(torch.zeros_like(clean), clean)  # where the sigmoid version ended
    assert out.mean() > 0.5 * clean.mean() and F.mse_loss(out, clean) < 0.25 * black


def test_stats_classifier_takes_the_detector_statistics():
    from pipeline.enhance.detector import FEATURES

    model = _small("stats_mlp")
    stats = torch.rand(5, len(FEATURES)) * 10
    assert model(stats).shape == (5, len(DEGRADATIONS))
    turned = stats.clone()
    turned[:, FEATURES.index("streak_angle")] += 180.0  # a streak direction, not an arrow
    torch.testing.assert_close(model.features(turned), model.features(stats), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=f"\\(N, {len(FEATURES)}\\)"):
        model(torch.rand(5, len(FEATURES) - 1))


def test_stats_cnn_decides_on_the_statistics_and_the_picture():
    from pipeline.enhance.detector import FEATURES

    model = _small("stats_cnn")
    stats = torch.rand(3, len(FEATURES)) * 10
    image = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        out = model(stats, image)
        assert out.shape == (3, len(DEGRADATIONS))
        torch.testing.assert_close(model(stats, image.float() / 255), out)  # uint8 is read as 0..255
        assert not torch.allclose(model(stats, 255 - image), out, atol=1e-4)  # the picture counts
        assert not torch.allclose(model(stats * 2, image), out, atol=1e-4)  # and so do the statistics
    torch.testing.assert_close(model.distance(stats), model.stats.distance(stats))
    with pytest.raises(ValueError, match="\\(N, 3, 32, 32\\)"):
        model(stats, torch.rand(3, 3, 48, 48))

"""GAN training: the losses, one adversarial step, and a real 2-worker run that resumes.

Unit tests drive `pipeline.train.adversarial` and a checkpoint round trip on tiny models
without Ray; the integration test trains conf/train/gan_smoke.yaml on a local Ray cluster
with a sqlite MLflow store.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.models import build
from pipeline.train.adversarial import Adversary, gan_step
from pipeline.train.config import TRAIN_CONF_DIR, load_train_config
from pipeline.train.restoration import MASK_THRESHOLD, Restoration, attentive_loss, image_of


def _task(model: str, adversarial: dict | None = None) -> Restoration:
    return Restoration({"model": {"name": model}, "train": {"loss": "l1", "adversarial": adversarial}})


def _rainy_batch(n: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    target = torch.rand(n, 3, size, size) * 0.5
    degraded = target.clone()
    degraded[:, :, 4:12, 4:12] += 0.4  # a "drop": well above the mask threshold
    degraded[:, :, 20:24, 20:24] += MASK_THRESHOLD / 2  # too faint to count
    return {"input": degraded, "target": target}


def test_attentive_loss_is_zero_for_exact_outputs_and_the_true_mask():
    batch = _rainy_batch()
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 4:12, 4:12] = 1
    scales = [F.adaptive_avg_pool2d(batch["target"], s) for s in (8, 16)] + [batch["target"]]
    perfect = attentive_loss((scales, [mask, mask]), batch, F.l1_loss)
    assert float(perfect) == pytest.approx(0.0, abs=1e-6)
    # a wrong early map costs less than the same error in the last map (later maps weigh more)
    early = attentive_loss((scales, [torch.zeros_like(mask), mask]), batch, F.l1_loss)
    late = attentive_loss((scales, [mask, torch.zeros_like(mask)]), batch, F.l1_loss)
    assert 0 < float(early) < float(late)
    blurred = attentive_loss(([scales[0], scales[1], scales[2] + 0.1], [mask, mask]), batch, F.l1_loss)
    assert float(blurred) == pytest.approx(0.1, rel=1e-4)  # full scale weighs 1.0


def test_discriminator_learns_and_generator_gets_an_adversarial_gradient():
    torch.manual_seed(0)
    task = _task("srresnet", {"discriminator": "srgan_d"})
    generator = build("srresnet", channels=1, features=8, blocks=1, batch_norm=False)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-4)
    adversary = Adversary({"discriminator": "srgan_d", "params": {"channels": 1, "features": 8},
                           "lr": 1e-3, "weight": 1e-3, "map_weight": 0.05})
    target = torch.rand(4, 1, 32, 32)
    batch = {"target": target, "input": F.avg_pool2d(target, 4)}
    before = [p.detach().clone() for p in generator.parameters()]
    steps = [gan_step(generator, optimizer, batch, task=task, adversary=adversary, bf16=False,
                      channels_last=False, grad_clip=1.0) for _ in range(30)]
    assert set(steps[0]) == {"train_loss", "pixel_loss", "g_loss", "d_loss"}
    assert steps[-1]["d_loss"] < 0.5 * steps[0]["d_loss"]  # it tells real from fake
    assert steps[-1]["g_loss"] > steps[0]["g_loss"]  # so fooling it gets harder
    for s in steps:
        assert s["train_loss"] == pytest.approx(s["pixel_loss"] + 1e-3 * s["g_loss"], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, generator.parameters()))


def test_attentive_gan_step_trains_its_map_and_the_discriminators_map():
    torch.manual_seed(0)
    conf = {"discriminator": "attentive_d", "params": {"features": 4}, "lr": 1e-3, "weight": 1e-2, "map_weight": 1.0}
    task = _task("attentive_gan", conf)
    generator = build("attentive_gan", features=4, ae_features=4, steps=2, blocks=1)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    adversary = Adversary(conf)
    batch = _rainy_batch()
    losses = [gan_step(generator, optimizer, batch, task=task, adversary=adversary, bf16=False,
                       channels_last=False, grad_clip=None) for _ in range(15)]
    assert all(torch.isfinite(torch.tensor(list(s.values()))).all() for s in losses)
    assert losses[-1]["pixel_loss"] < losses[0]["pixel_loss"]
    generator.eval()
    with torch.no_grad():
        out = generator(batch["input"])
    assert image_of(out).shape == batch["input"].shape  # eval mode: (image, maps)
    assert "g_loss" in task.curves and "d_loss" in task.curves


def test_adversarial_config_is_checked():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="unknown discriminator"):
        load_train_config("gan_smoke", ["train.adversarial.discriminator=dncnn"])
    with pytest.raises(ConfigError, match="1-channel"):
        load_train_config("gan_smoke", ["train.adversarial.params.channels=3"])


def test_checkpoint_restores_the_same_game(tmp_path):
    """A GAN checkpoint carries the discriminator and its optimiser: loaded into a fresh
    generator and adversary, the next step is the step the original pair would take."""
    import ray.train

    from pipeline.train import checkpoints

    def pair():
        torch.manual_seed(1)  # a different initialisation than the checkpointed pair's
        generator = build("srresnet", channels=1, features=8, blocks=1, batch_norm=False)
        adversary = Adversary({"discriminator": "srgan_d", "params": {"channels": 1, "features": 8},
                               "lr": 1e-3, "weight": 1e-3})
        return generator, torch.optim.Adam(generator.parameters(), lr=1e-3), adversary

    torch.manual_seed(0)
    task = _task("srresnet", {"discriminator": "srgan_d"})
    target = torch.rand(4, 1, 32, 32)
    batch = {"target": target, "input": F.avg_pool2d(target, 4)}
    kwargs = dict(task=task, bf16=False, channels_last=False, grad_clip=None)
    generator, optimizer, adversary = pair()
    torch.manual_seed(0)
    for _ in range(3):
        gan_step(generator, optimizer, batch, adversary=adversary, **kwargs)
    checkpoints.write(tmp_path, model=generator, optimizer=optimizer, epoch=1, meta={}, extra=adversary.state())

    restored = pair()
    assert checkpoints.load_into(ray.train.Checkpoint.from_directory(str(tmp_path)), *restored)["epoch"] == 1
    # Two steps: the second shows both optimisers' restored state (Adam's moments) too.
    torch.manual_seed(2)
    expected = [gan_step(generator, optimizer, batch, adversary=adversary, **kwargs) for _ in range(2)]
    torch.manual_seed(2)
    steps = [gan_step(restored[0], restored[1], batch, adversary=restored[2], **kwargs) for _ in range(2)]
    assert steps == [pytest.approx(e) for e in expected]
    checkpoints.write(tmp_path / "plain", model=generator, optimizer=optimizer, epoch=1, meta={})
    with pytest.raises(ValueError, match="no discriminator"):
        checkpoints.load_into(ray.train.Checkpoint.from_directory(str(tmp_path / "plain")), *pair())


@pytest.mark.integration
def test_gan_smoke_trains_on_two_workers(ray_cluster, tmp_path):
    """The GAN path on Ray Train: both losses logged, the checkpoint holds the game (resuming
    it is the driver's generic resume, tested in test_train, plus the restore above)."""
    import mlflow

    from pipeline.train import checkpoints
    from pipeline.train.job import train

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["name=gan-smoke", f"storage_path={tmp_path / 'ckpt'}", "tracking.register_as=null", "tracking.alias=null"]
    first = train(load_train_config(TRAIN_CONF_DIR / "gan_smoke.yaml", common), tracking_uri=uri)
    client = mlflow.MlflowClient(uri)
    for name in ("g_loss", "d_loss", "pixel_loss", "val_psnr"):
        assert [m.step for m in client.get_metric_history(first["run_id"], name)] == [0], name
    state, meta = checkpoints.read(first["checkpoint"])
    assert meta["epoch"] == 1
    assert "discriminator" in state and "d_optimizer" in state
    assert any(k.startswith("head") for k in state["discriminator"])  # the SRGAN discriminator's head

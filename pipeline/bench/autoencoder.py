"""Suite `ae-experiment`: seed 004's autoencoder experiment, every model trained by the train job.

(a) For each noise type, autoencoders trained on noisy digits against the noisy input and
the classical enhancers. (b) Clean-trained then noisy-fine-tuned against trained on noisy
from the start, with the same total budget: an architecture's `epochs` epochs of the same
size, batch and recipe for both arms, split `pretrain_epochs` clean + the rest noisy for the
fine-tuned arm (which therefore runs its learning-rate schedule twice); the clean model
alone is shown too. Architectures without `pretrain_epochs` run arm (a) only.

Training runs are runs of the train job (`pipeline.train.job.train`) on
conf/train/ae_mnist_<noise>.yaml and ae_mnist_clean.yaml with the suite's overrides, so each
is an MLflow run (MLFLOW_TRACKING_URI, else ./mlflow.db) and a registered model version;
the fine-tune starts from the clean model's version through `train.init_from`. Evaluation
is the `mnist-noise` measurement on the held-out digits, with exactly the noise step of
the model's train config. Rows name the model version, its MLflow run and training time.

As in the `multitask` suite, runs are named `ae-<arch>-<noise>-<arm>-e<epochs>-s<seed>` under
`storage_path`: a run that already has its epochs is measured, not trained again (its
checkpoints must belong to the same tracking store), and one cut short is resumed.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pipeline import raycluster, tracking
from pipeline.bench import mnist

log = logging.getLogger("imgenhance.bench")
# Row labels of the tables: "<arch> AE, <arm> (<the run's own epochs>)".
ARMS = {"noisy": "trained on noisy ({} epochs)", "clean": "trained on clean only ({} epochs)",
        "finetune": "the clean one fine-tuned on noisy (+{} epochs)"}


def registered(name: str, run_id: str) -> str:
    """`models:/name/<version>`: the newest version registered from MLflow run `run_id`."""
    from mlflow import MlflowClient

    found = MlflowClient().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if not found:
        raise LookupError(f"no version of {name!r} from run {run_id} in {tracking.mlflow_uri()}: "
                          "were its checkpoints made with another tracking store?")
    return f"models:/{name}/{max(int(v.version) for v in found)}"


def train_run(config_name: str, overrides: list[str]) -> dict[str, Any]:
    """Train one config through the train job, or reuse the run when it has all its epochs:
    (model reference, MLflow run id, epochs, training seconds = the sum of its epoch times)."""
    from mlflow import MlflowClient

    from pipeline.train import checkpoints
    from pipeline.train.config import load_train_config
    from pipeline.train.job import train

    config = load_train_config(config_name, overrides)
    done = checkpoints.latest(config.storage_path, config.name)
    if done and done["epoch"] >= config.train.epochs:
        tracking.setup(config.tracking.experiment)
        run_id = done["mlflow_run_id"]
    else:
        raycluster.init()
        run_id = train(config, resume=done is not None)["run_id"]
    seconds = sum(m.value for m in MlflowClient().get_metric_history(run_id, "epoch_seconds"))
    return {"model_ref": registered(config.tracking.register_as, run_id), "run_id": run_id,
            "epochs": config.train.epochs, "train_s": seconds}


def noise_step(noise: str) -> dict[str, Any]:
    """The (single) degradation step the noise's train config trains on."""
    from pipeline.train.config import load_train_config

    return load_train_config(f"ae_mnist_{noise}").data.steps[0].model_dump()


def _overrides(conf: dict, seed: int, arch: str, what: str, epochs: int) -> list[str]:
    """Train-config overrides of one run; `what` names the data and arm (e.g. gaussian-ft)."""
    return [*conf["architectures"][arch].get("overrides", []), f"name=ae-{arch}-{what}-e{epochs}-s{seed}",
            f"data.seed={seed}", f"storage_path={conf['storage_path']}",
            f"tracking.register_as=ae-mnist-{arch}-{what}", f"train.epochs={epochs}"]


def train_arch(conf: dict, seed: int, arch: str) -> list[dict[str, Any]]:
    """Every training run of one architecture: {noise, arm, model_ref, run_id, epochs, train_s}."""
    budget, pretrain = conf["architectures"][arch]["epochs"], conf["architectures"][arch].get("pretrain_epochs")
    slugs = {noise: noise.replace("_", "-") for noise in conf["noises"]}
    runs = [{"noise": noise, "arm": "noisy",
             **train_run(f"ae_mnist_{noise}", _overrides(conf, seed, arch, slug, budget))}
            for noise, slug in slugs.items()]
    if pretrain is None:
        return runs
    clean = train_run("ae_mnist_clean", _overrides(conf, seed, arch, "clean", pretrain))
    runs += [{"noise": noise, "arm": "clean", **clean} for noise in slugs]
    for noise, slug in slugs.items():
        overrides = _overrides(conf, seed, arch, f"{slug}-ft", budget - pretrain)
        runs.append({"noise": noise, "arm": "finetune",
                     **train_run(f"ae_mnist_{noise}", [*overrides, f"train.init_from={clean['model_ref']}"])})
    return runs


def run(conf: dict, seed: int) -> list[dict]:
    """Baselines first (a missing MNIST file skips the suite before any training), then train
    every arm of every architecture, then measure each model on its own noise."""
    for arch, spec in conf["architectures"].items():
        if not 0 < spec.get("pretrain_epochs", 1) < spec["epochs"]:
            raise ValueError(f"ae-experiment {arch}: pretrain_epochs must lie between 0 and epochs")
    steps = {noise: noise_step(noise) for noise in conf["noises"]}
    cases = {noise: mnist.noisy_digits(conf["source"], step, seed) for noise, step in steps.items()}
    rows = []
    for entry in conf["baselines"]:
        enhancer = mnist.baseline(entry)
        for noise, step in steps.items():
            rows += [{**r, "arch": "classical", "arm": "baseline", "epochs": 0, "run_id": "", "train_s": 0.0}
                     for r in mnist.rows(enhancer, noise, step, cases[noise])]
    for arch in conf["architectures"]:
        for trained in train_arch(conf, seed, arch):
            noise, ref = trained.pop("noise"), trained.pop("model_ref")
            log.info("ae-experiment: measuring %s (%s, %s) on %s", ref, arch, trained["arm"], noise)
            extra = {"arch": arch, **trained}
            rows += [{**r, **extra} for r in mnist.rows(mnist.enhancer_of(ref), noise, steps[noise], cases[noise])]
    return rows


def _label(row: pd.Series) -> str:
    if row["arm"] == "baseline":
        return row["model"]
    return f"{row['arch']} AE, " + ARMS[row["arm"]].format(row["epochs"])


def summarize(table) -> str:
    df = table.to_pandas()
    df["label"] = df.apply(_label, axis=1)
    learned = df[df["arm"] != "baseline"]
    both_arms = learned[learned["arch"].isin(learned.loc[learned["arm"] == "finetune", "arch"])]
    lines = ["**(a) Autoencoders trained on noisy digits vs the classical enhancers**\n",
             *mnist.table(df[df["arm"].isin(["baseline", "noisy"])], "label"),
             "\n**(b) Clean-trained then fine-tuned on noisy vs trained on noisy, the same total epochs**\n",
             *mnist.table(both_arms, "label"), *mnist.notes(df),
             "Epochs hold 8000 pairs (batches of 64, cosine learning rate 1e-3 to 1e-5 within every run); the "
             "fine-tune starts from the clean model's registered version (`train.init_from`). Models (registry "
             "of the tracking store the suite ran with) and training minutes (sum of epoch times: steps and data "
             "waits, not start-up or validation):\n"]
    for ref, part in learned.groupby("model", sort=False):
        first = part.iloc[0]
        noise = "" if first["arm"] == "clean" else f" / {first['noise']}"
        lines.append(f"- {first['label']}{noise}: `{ref}`, run `{first['run_id']}`, {first['train_s'] / 60:.1f} min")
    return "\n".join(lines)

"""Suite `multitask`: one two-head classifier vs two single-head ones (seed 000), same budget.

Trains conf/train/classifier.yaml (one ResNet trunk, domain + degradation heads) and its
single-head baselines (classifier_single_*.yaml: the same data, crops, schedule and epochs)
with the project's train job, then reads every run's validation curve back from MLflow: per
head, the accuracy after each epoch and the training seconds spent so far (the sum of rank
0's epoch_seconds: steps and data waits, not start-up or validation). The summary gives the
final accuracy and the epochs and training time each head needed to reach its target.

Runs are named `bench-<config>-s<seed>` under `storage_path`: a run that already has the
budget's epochs is read, not trained again, and one cut short is resumed, so a stopped
suite continues where it was.
"""

from __future__ import annotations

from pipeline import raycluster, tracking
from pipeline.train import checkpoints
from pipeline.train.config import load_train_config

DEFAULT_CONFIGS = ("classifier", "classifier_single_degradation", "classifier_single_domain")
DEFAULT_STORAGE = "~/.cache/imgenhance/bench"


def _trained(name: str, overrides: list[str]) -> tuple[str, list[str]]:
    """(MLflow run id, heads) of config `name` trained to the suite's budget."""
    from pipeline.train.job import train
    from pipeline.train.tasks import of

    config = load_train_config(name, overrides)
    done = checkpoints.latest(config.storage_path, config.name)
    heads = list(of(config.model_dump()).heads)
    if done and done["epoch"] >= config.train.epochs:
        tracking.setup(config.tracking.experiment)
        return done["mlflow_run_id"], heads
    raycluster.init()
    return train(config, resume=done is not None)["run_id"], heads


def _curve(client, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def run(conf: dict, seed: int) -> list[dict]:
    from mlflow import MlflowClient

    rows = []
    for name in conf.get("configs", DEFAULT_CONFIGS):
        overrides = [*conf.get("overrides", []), f"name=bench-{name}-s{seed}", f"data.seed={seed}",
                     f"storage_path={conf.get('storage_path', DEFAULT_STORAGE)}",
                     "tracking.register_as=null", "tracking.alias=null"]
        run_id, heads = _trained(name, overrides)
        client = MlflowClient()
        seconds = _curve(client, run_id, "epoch_seconds")
        model = client.get_run(run_id).data.params["model.name"]
        for head in heads:
            elapsed = 0.0
            for step, accuracy in sorted(_curve(client, run_id, f"val_{head}_acc").items()):
                elapsed += seconds.get(step, float("nan"))
                rows.append({"config": name, "model": model, "head": head, "epoch": step + 1,
                             "accuracy": accuracy, "train_seconds": elapsed,
                             "target": float(conf.get("targets", {}).get(head, 0.9)), "run_id": run_id})
    return rows


def _reached(rows: list[dict]) -> dict | None:
    return next((r for r in sorted(rows, key=lambda r: r["epoch"]) if r["accuracy"] >= r["target"]), None)


def summarize(table) -> str:
    rows = table.to_pylist()
    lines = ["| head | model | final accuracy | epochs | target | epochs to target | training min to target |",
             "|---|---|---|---|---|---|---|"]
    for head in ("domain", "degradation"):
        for model in ("resnet_multitask", "resnet_single"):
            mine = [r for r in rows if r["head"] == head and r["model"] == model]
            if not mine:
                continue
            last, hit = max(mine, key=lambda r: r["epoch"]), _reached(mine)
            reach = (f"{hit['epoch']} | {hit['train_seconds'] / 60:.1f}" if hit else "not reached | -")
            lines.append(f"| {head} | {model} | {last['accuracy']:.3f} | {last['epoch']} | {last['target']:.2f} | {reach} |")
    total = {m: sum(max((r["train_seconds"] for r in rows if r["model"] == m and r["config"] == c), default=0)
                    for c in {r["config"] for r in rows if r["model"] == m}) for m in ("resnet_multitask", "resnet_single")}
    lines.append(f"\nTraining time for both heads: multitask {total['resnet_multitask'] / 60:.1f} min (one run) vs "
                 f"single-task {total['resnet_single'] / 60:.1f} min (two runs). Accuracy on the fixed validation "
                 "crops (held-out images of every domain folder, synthetic degradations), one seed. Training "
                 "minutes are sums of epoch times on a shared 2-core machine; a step costs the same for both "
                 "models (one more linear layer), so time differences between runs are the machine's load: "
                 "compare epochs.")
    return "\n".join(lines)

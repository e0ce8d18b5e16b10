"""Copy a registered model version's weights into the package as `bundled:<name>`.

    python -m pipeline.train.export --model models:/ffdnet-gray@candidate --name ffdnet_gray

Only the state_dict and its JSON sidecar are copied (no optimizer state); the sidecar
records which registry version and MLflow run they came from.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from pipeline import tracking
from pipeline.datasets import data_root
from pipeline.enhance.learned import BUNDLED_DIR
from pipeline.models.weights import load_weights, read_meta, sidecar_path


def export(ref: str, name: str, folder: Path = BUNDLED_DIR) -> Path:
    import mlflow

    mlflow.set_tracking_uri(tracking.tracking_uri())
    registered, version = tracking.resolve_version(ref)
    source = sorted(tracking.download(f"models:/{registered}/{version}", tempfile.mkdtemp()).rglob("*.pt"))[0]
    load_weights(source)  # refuses anything but a plain state_dict of the named architecture
    meta = read_meta(source)
    run_id = mlflow.MlflowClient().get_model_version(registered, version).run_id
    extra = {**meta.get("extra", {}), "registered": f"models:/{registered}/{version}", "mlflow_run_id": run_id}
    root = str(data_root()) + "/"  # no machine paths in the package: data names relative to IMGENHANCE_DATA
    extra["data"] = [d.replace(root, "") for d in extra.get("data", [])]
    meta["extra"] = extra
    target = folder / f"{name}.pt"
    shutil.copyfile(source, target)
    sidecar_path(target).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="models:/name@alias or models:/name/version")
    parser.add_argument("--name", required=True, help="bundled name (file pipeline/weights/<name>.pt)")
    args = parser.parse_args(argv)
    print(export(args.model, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())

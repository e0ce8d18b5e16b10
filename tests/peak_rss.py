"""Peak memory of one image through the enhance stages, in a fresh process without Ray.

    python -m tests.peak_rss IMAGE OUTPUT_DIR [--config FILE] [--set limits.max_pixels=N] [--limit-gb 8]

Runs the same stage functions the Ray flow chains (decode, classify, route with the default
routes, enhance when routed, measure, write) on one image, then prints one JSON line: the
row's status and error and this process's peak RSS (`resource.getrusage`). The row goes to
`OUTPUT_DIR/_results/` as a run's would (key `<image folder>/<image name>`), so the audit
can check it. A Ray worker
holds the same buffers while it runs these stages, so the figure bounds what one image
costs a worker. Compare with a tiny image to get the cost of the image itself. The address
space is capped (`--limit-gb`), so a stage that would take the machine's memory fails with
MemoryError in this process instead of calling the OOM killer onto its neighbours.
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path

from pipeline.config import load_enhance_config
from pipeline.enhance import flow
from pipeline.enhance.classify import classify_batch
from pipeline.enhance.decode import decode_batch
from pipeline.enhance.enhance import EnhanceActor
from pipeline.labels import PASSTHROUGH
from pipeline.enhance.measure import measure_batch
from pipeline.enhance.route import route_batch
from pipeline.enhance.write import write_batch
from pipeline.io.results import ResultWriter
from pipeline.io.schema import to_table


def run_one(image: Path, output: str, config_path: str | None, overrides: list[str]) -> dict:
    config, routes = load_enhance_config(config_path, overrides)
    max_pixels = config.limits.max_pixels
    params = flow.pinned_params(config, routes)
    row = {"key": f"{image.parent.name}/{image.name}", "member": image.name, "source": str(image),
           "data": image.read_bytes(), "run_id": flow.new_run_id()}
    table = route_batch(classify_batch(decode_batch(to_table([row]), max_pixels), config.classify.max_side), routes)
    name = table["enhancer"][0].as_py()
    if name and name != PASSTHROUGH:
        table = EnhanceActor(name, config.enhancer(name).kind or name, params[name], max_pixels=max_pixels)(table)
    table = write_batch(measure_batch(table, None, max_pixels), output, None, config.output.jpeg_quality)
    writer = ResultWriter(output, row["run_id"], None, rows_per_file=1, flush_seconds=0)
    writer.add(table)
    writer.flush()
    result = table.select(["status", "error", "enhancer", "height", "width"]).to_pylist()[0]
    return {**result, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("output")
    parser.add_argument("--config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--limit-gb", type=float, default=8.0, help="address-space cap of this process")
    args = parser.parse_args()
    cap = int(args.limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    print(json.dumps(run_one(args.image, args.output, args.config, args.overrides)))

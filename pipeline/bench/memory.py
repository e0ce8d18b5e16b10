"""Suite `memory`: peak memory of the enhance job for a small and a 10x larger archive.

Streaming means memory does not grow with the archive: the read task streams members, blocks
are small, results go to part files as they arrive. Measured as the peak, over the run, of
the summed PSS (proportional set size: shared pages such as the object store counted once,
split between the processes that map them) of the driver and every process under it (the
local Ray cluster: GCS, raylet, workers, actors), sampled every `interval` seconds, each
archive on a fresh cluster.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import psutil

from pipeline import raycluster
from pipeline.bench.common import TreeSampler, process_tree
from pipeline.bench.throughput import make_tar
from pipeline.config import RayConf


def tree_pss() -> int:
    """Bytes of PSS of this process and all its descendants (processes gone meanwhile skipped)."""
    total = 0
    for proc in process_tree():
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class PeakSampler(TreeSampler):
    """`peak` of `tree_pss()` over the samples and `baseline` (the reading at creation), in bytes."""

    def __init__(self, interval: float = 0.5):
        super().__init__(interval)
        self.peak, self.samples = 0, 0
        self.baseline = tree_pss()

    def sample(self) -> None:
        self.peak = max(self.peak, tree_pss())
        self.samples += 1


def enhance_once(tar: Path, out: Path, enhancer: str) -> dict:
    """The enhance job over `tar` with every image routed to `enhancer` (a classical one)."""
    from pipeline.config import load_enhance_config
    from pipeline.enhance import flow

    out.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / "routes.yaml").write_text(f"rules: []\ndefault: {enhancer}\n")
    (out.parent / "enhance.yaml").write_text("routes: routes.yaml\ntracking: {enabled: false}\n")
    config, routes = load_enhance_config(out.parent / "enhance.yaml")
    return flow.run(flow.plan([str(tar)], str(out), config), config, routes, params=flow.check(config, routes))


def run(conf: dict, seed: int) -> list[dict]:
    """Each count on a fresh local Ray cluster: a second run on the first one's cluster would
    start from its warm worker processes and look cheaper (or dearer) for that reason alone."""
    import ray

    rows = []
    enhancer = conf.get("enhancer", "bilateral")
    for count in conf.get("counts", [1000, 10000]):
        with tempfile.TemporaryDirectory() as tmp:
            tar = Path(tmp) / "in.tar"
            input_mb = sum(len(f) for f in make_tar(tar, count, float(conf.get("sigma", 25)), seed,
                                                    side=int(conf.get("side", 128)))) / 2**20  # not kept in memory
            ray.shutdown()
            raycluster.init(dashboard=RayConf().dashboard)  # as the enhance job starts it
            with PeakSampler(float(conf.get("interval", 0.5))) as sampler:
                started = time.perf_counter()
                summary = enhance_once(tar, Path(tmp) / "run" / "out", enhancer)
                seconds = time.perf_counter() - started
            rows.append({"images": count, "archive_mb": tar.stat().st_size / 2**20, "enhancer": enhancer,
                         "ok": summary["by_status"].get("ok", 0), "seconds": seconds,
                         "peak_pss_mb": sampler.peak / 2**20, "baseline_pss_mb": sampler.baseline / 2**20,
                         "samples": sampler.samples, "input_mb": input_mb})
    return rows


def summarize(table) -> str:
    rows = table.to_pylist()
    lines = ["| images | archive MB | ok | seconds | peak PSS MB (driver + Ray) | before the run MB |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['images']} | {r['archive_mb']:.1f} | {r['ok']} | {r['seconds']:.1f} | {r['peak_pss_mb']:.0f} | "
              f"{r['baseline_pss_mb']:.0f} |" for r in rows]
    if len(rows) >= 2:
        ratio = rows[-1]["peak_pss_mb"] / rows[0]["peak_pss_mb"]
        lines += ["", f"Peak memory ratio {rows[-1]['images']} vs {rows[0]['images']} images: **{ratio:.2f}** "
                  f"(target <= 1.2; enhancer `{rows[0]['enhancer']}`)."]
    return "\n".join(lines)

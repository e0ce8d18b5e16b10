"""Suite `throughput`: the enhance job against its own ceiling and against the plain way.

The same noisy 8-bit PNGs (in one tar) and the same model, three ways, in one run so the
ratios hold on a shared machine:

- `model-only`: forward passes on tensors decoded beforehand, no I/O: the ceiling. Run
  both as one process with all the threads and as one single-threaded process per core
  (what the pipeline's actors are); the faster of the two is the ceiling.
- `naive`: one process, a loop read -> decode -> enhance -> encode -> write, all threads.
- `pipeline`: the enhance job end to end (read, decode, classify, route, enhance, measure,
  write, result rows), every image routed to the model.

Rows carry images/s and megapixels/s; `ratios()` gives pipeline/model-only and
pipeline/naive, which the benchmark job prints as its last line. `enhancer_cost` adds
milliseconds per megapixel of each enhancer on one thread. `CpuSampler` splits the
pipeline run's CPU time between the model actors, the stage tasks, the driver and Ray's
own services (`way: cpu` rows), which says where the gap to the ceiling goes.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import torch

from pipeline import raycluster
from pipeline.bench.common import TreeSampler, enhancer_of, process_tree
from pipeline.config import RayConf
from pipeline.degrade import DEGRADE
from pipeline.enhance.enhance import build_enhancer, enhance_image
from pipeline.io.codecs import decode, encode

# Gray pictures bundled with scikit-image (no download), at their own sizes (0.07-0.26 MP).
PICTURES = ("camera", "moon", "coins", "page", "text", "clock", "astronaut", "coffee", "chelsea", "rocket")
MAX_PIXELS = 10**9
WAYS = ("pipeline", "naive", "model-only")


def _pictures() -> list[np.ndarray]:
    import cv2
    import skimage.data

    out = []
    for name in PICTURES:
        image = getattr(skimage.data, name)()
        out.append(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image)
    return out


def make_tar(path: Path, count: int, sigma: float, seed: int, side: int | None = None) -> list[bytes]:
    """`count` noisy gray PNGs (pictures cycled, fresh noise each; resized to side x side when
    given) in a tar; returns the files."""
    import cv2

    pictures, files = _pictures(), []
    if side:
        pictures = [cv2.resize(p, (side, side), interpolation=cv2.INTER_AREA) for p in pictures]
    with tarfile.open(path, "w") as tar:
        for i in range(count):
            noisy = DEGRADE["gaussian_noise"](pictures[i % len(pictures)], seed=seed + i, sigma=sigma)
            data = encode(noisy, "png")
            info = tarfile.TarInfo(f"img_{i:05d}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            files.append(data)
    return files


def _forward_all(model_ref: str, threads: int, images: list[np.ndarray]) -> float:
    """Seconds of forward passes over preloaded tensors (the model loaded before the clock)."""
    torch.set_num_threads(threads)
    net = build_enhancer("learned", {"model": model_ref, "threads": threads}).net
    tensors = [torch.from_numpy(im.astype(np.float32) / 255.0)[None, None] for im in images]
    started = time.perf_counter()
    with torch.inference_mode():
        for x in tensors:
            net(x).clamp_(0, 1)
    return time.perf_counter() - started


def model_only(model_ref: str, images: list[np.ndarray], cores: int) -> dict[str, float]:
    """The faster of one process x `cores` threads and `cores` processes x 1 thread."""
    one = _forward_all(model_ref, cores, images)
    halves = [images[i::cores] for i in range(cores)]
    with ProcessPoolExecutor(cores) as pool:
        # Warm-up: imports, weights and the first calls, on a few images (not a whole half again).
        list(pool.map(_forward_all, [model_ref] * cores, [1] * cores, [images[:4]] * cores))
        started = time.perf_counter()
        list(pool.map(_forward_all, [model_ref] * cores, [1] * cores, halves))
        parallel = time.perf_counter() - started
    return {"seconds": min(one, parallel), "one_process_s": one, "processes_s": parallel}


def _params(model_ref: str, tile: int | None) -> dict:
    """The learned enhancer's params: the model, and a tile size when the suite sets one."""
    return {"model": model_ref, **({"tile": tile} if tile else {})}


def naive(model_ref: str, tar_path: Path, out: Path, cores: int, tile: int | None = None) -> float:
    """Seconds of the plain single-process loop over the tar, writing PNGs to `out`."""
    torch.set_num_threads(cores)
    enhancer = build_enhancer("learned", {**_params(model_ref, tile), "threads": cores})
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tarfile.open(tar_path) as tar:
        for member in tar:
            pixels = decode(tar.extractfile(member).read(), MAX_PIXELS).pixels
            enhanced = enhance_image(enhancer, pixels, {})
            (out / member.name).write_bytes(encode(enhanced, "png"))
    return time.perf_counter() - started


def job_config(folder: Path, model_ref: str, cores: int, batch_size: int, model_cpus: float,
               tile: int | None = None) -> Path:
    """An enhance config in `folder` routing every image to the model (`cores` actors)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "routes.yaml").write_text("rules: []\ndefault: model\n")
    (folder / "enhance.yaml").write_text(
        "routes: routes.yaml\ntracking: {enabled: false}\n"
        f"enhancers:\n  model: {{kind: learned, num_cpus: {model_cpus}, min_actors: {cores}, max_actors: {cores}, "
        f"batch_size: {batch_size}, params: {json.dumps(_params(model_ref, tile))}}}\n")
    return folder / "enhance.yaml"


def pipeline_run(model_ref: str, tar_path: Path, out: Path, cores: int, batch_size: int, model_cpus: float,
                 tile: int | None = None) -> dict:
    """The enhance job on the tar with every image routed to the model: one single-threaded
    actor per core, each holding `model_cpus` logical CPUs (the rest is left to the read,
    decode, classify, measure and write tasks); returns the run's summary."""
    from pipeline.config import load_enhance_config
    from pipeline.enhance import flow

    config, routes = load_enhance_config(job_config(out.parent, model_ref, cores, batch_size, model_cpus, tile))
    params = flow.check(config, routes)
    return flow.run(flow.plan([str(tar_path)], str(out), config), config, routes, params=params)


# Ray's own processes by command line: everything else under the driver runs pipeline work.
_RAY_SERVICES = ("_StatsActor", "Autoscaling", "ActorLocation", "DashboardAgent", "RuntimeEnvAgent")


def cpu_role(cmdline: str, is_driver: bool) -> str:
    """Which part of a run a process's CPU belongs to, from its command line (Ray sets
    worker titles such as `ray::IDLE` and `ray::MapWorker(MapBatches(EnhanceActor))`)."""
    if is_driver:
        return "driver"
    if "EnhanceActor" in cmdline:
        return "model actors"
    if cmdline.startswith("ray::") and not any(name in cmdline for name in _RAY_SERVICES):
        return "stage tasks"
    return "ray services"


class CpuSampler(TreeSampler):
    """CPU seconds (user + system) of this process and its descendants (a local Ray's
    processes) between enter and exit, by `cpu_role`. Sampled every `interval` seconds, so a
    process that exits loses at most its last interval. A sample costs ~6 ms of the driver's
    CPU (40 processes), so the default samples rarely: the run it measures pays for it."""

    def __init__(self, interval: float = 2.0):
        super().__init__(interval)
        self._start: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}

    def sample(self) -> None:
        me = os.getpid()
        for proc in process_tree():
            try:
                times = proc.cpu_times()
                cmdline = " ".join(proc.cmdline()) or proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            self._last[proc.pid] = (cpu_role(cmdline, proc.pid == me), times.user + times.system)

    def __enter__(self) -> CpuSampler:
        self.sample()
        self._start = {pid: cpu for pid, (_, cpu) in self._last.items()}
        return super().__enter__()

    def by_role(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, (role, cpu) in self._last.items():
            out[role] = out.get(role, 0.0) + cpu - self._start.get(pid, 0.0)
        return out


def enhancer_cost(names: list[str], image: np.ndarray, repeats: int = 2) -> list[dict]:
    """Milliseconds per megapixel of each enhancer (or model reference) on one thread."""
    torch.set_num_threads(1)
    rows = []
    for name in names:
        enhancer = enhancer_of(name, threads=1)
        enhance_image(enhancer, image, {"noise_sigma": 25.0})  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            enhance_image(enhancer, image, {"noise_sigma": 25.0})
        ms = (time.perf_counter() - started) * 1e3 / repeats
        rows.append({"way": "enhancer_cost", "model": name, "ms_per_mp": ms / (image.size / 1e6)})
    return rows


def run(conf: dict, seed: int) -> list[dict]:
    cores = int(conf.get("cores", os.cpu_count() or 1))
    model, count = conf.get("model", "bundled:ffdnet_gray"), int(conf.get("count", 60))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        side = conf.get("side")  # None: the pictures' own sizes
        files = make_tar(folder / "noisy.tar", count, float(conf.get("sigma", 25)), seed, int(side) if side else None)
        images = [decode(f, MAX_PIXELS).pixels for f in files]
        megapixels = sum(im.size for im in images) / 1e6
        raycluster.init(dashboard=RayConf().dashboard)  # as the enhance job starts it
        # `tile`: the enhancer's tile size; at least the side, so both ways run whole frames as model-only does.
        tile = int(conf["tile"]) if conf.get("tile") else None
        timings = {"pipeline": None, "naive": naive(model, folder / "noisy.tar", folder / "naive", cores, tile)}
        started = time.perf_counter()
        with CpuSampler() as cpu:
            summary = pipeline_run(model, folder / "noisy.tar", folder / "out" / "enhanced", cores,
                                   int(conf.get("batch_size", 1)), float(conf.get("model_cpus", 0.5)), tile)
        timings["pipeline"] = time.perf_counter() - started
        if summary["by_status"] != {"ok": count}:
            raise RuntimeError(f"throughput: the pipeline run did not enhance every image: {summary['by_status']}")
        ceiling = model_only(model, images, cores)
        timings["model-only"] = ceiling["seconds"]
        rows = [{"way": way, "model": model, "images": count, "megapixels": megapixels, "cores": cores,
                 "seconds": s, "images_per_s": count / s, "megapixels_per_s": megapixels / s}
                for way, s in timings.items()]
        rows[-1].update(one_process_s=ceiling["one_process_s"], processes_s=ceiling["processes_s"])
        rows += [{"way": "cpu", "role": role, "cpu_seconds": seconds, "images": count, "cores": cores}
                 for role, seconds in sorted(cpu.by_role().items())]
        rows.append({"way": "cpu", "role": "model-only ceiling (cores x its seconds)",
                     "cpu_seconds": cores * ceiling["seconds"], "images": count, "cores": cores})
        cost_image = images[0]
        rows += enhancer_cost(list(conf.get("cost_enhancers", [])) + [model], cost_image)
    keys = {k: None for row in rows for k in row}  # one schema: Arrow takes the first row's keys
    return [{**keys, **row} for row in rows]


def ratios(table) -> dict[str, float]:
    """pipeline / model-only and pipeline / naive, from images/s of one run."""
    rate = {r["way"]: r["images_per_s"] for r in table.to_pylist() if r["way"] in WAYS}
    return {"pipeline/model-only": rate["pipeline"] / rate["model-only"],
            "pipeline/naive": rate["pipeline"] / rate["naive"]}


def ratio_line(table, name: str = "throughput") -> str:
    r = ratios(table)
    return f"{name}: pipeline/model-only={r['pipeline/model-only']:.2f} pipeline/naive={r['pipeline/naive']:.2f}"


def summarize(table) -> str:
    rows = table.to_pylist()
    ways = [r for r in rows if r["way"] in WAYS]
    lines = ["| way | images | megapixels | seconds | images/s | megapixels/s |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['way']} | {r['images']} | {r['megapixels']:.2f} | {r['seconds']:.1f} | {r['images_per_s']:.2f} | "
              f"{r['megapixels_per_s']:.3f} |" for r in ways]
    r = ratios(table)
    lines += ["", f"Ratios: pipeline/model-only = **{r['pipeline/model-only']:.2f}** (target >= 0.85), "
              f"pipeline/naive = **{r['pipeline/naive']:.2f}** (target >= 1.0); {ways[0]['cores']} cores, "
              f"model `{ways[0]['model']}`."]
    ceiling = next((r for r in ways if r["way"] == "model-only" and r.get("processes_s")), None)
    if ceiling:
        lines += ["", f"Model-only is the faster of one process x {ceiling['cores']} threads "
                  f"({ceiling['one_process_s']:.1f} s) and {ceiling['cores']} processes x 1 thread "
                  f"({ceiling['processes_s']:.1f} s); the pipeline runs {ceiling['cores']} single-threaded actors."]
    lines += ["", "| enhancer | ms per megapixel (1 thread) |", "|---|---|"]
    lines += [f"| {r['model']} | {r['ms_per_mp']:.0f} |" for r in rows if r["way"] == "enhancer_cost"]
    cpu = [r for r in rows if r["way"] == "cpu"]
    if cpu:
        run = sum(r["cpu_seconds"] for r in cpu if not r["role"].startswith("model-only"))
        lines += ["", "Where the pipeline run's CPU went (process CPU time, sampled every 2 s):", "",
                  "| part | CPU seconds | ms per image | share of the run |", "|---|---|---|---|"]
        lines += [f"| {r['role']} | {r['cpu_seconds']:.1f} | {1e3 * r['cpu_seconds'] / r['images']:.0f} | "
                  + ("-" if r["role"].startswith("model-only") else f"{r['cpu_seconds'] / run:.0%}") + " |"
                  for r in cpu]
    return "\n".join(lines)

"""How `raycluster.init` starts a local Ray: the enhance job's without the dashboard."""

import subprocess
import sys

# In a fresh process: the session's Ray (conftest) must not answer instead.
PROBE = """
import time
import psutil, ray
from pipeline import raycluster

def dashboard_running():
    # Ray keeps a minimal dashboard head (the state API) either way; the dashboard proper runs
    # its modules (metrics, data, jobs, ...) as `ray-dashboard-<Module>` processes.
    return any("ray-dashboard-" in " ".join(p.cmdline()) for p in psutil.Process().children(recursive=True))

for dashboard in (False, None):
    raycluster.init(dashboard=dashboard)
    time.sleep(5)  # the dashboard starts its module processes after init returns
    print(dashboard, dashboard_running())
    ray.shutdown()
"""


def test_local_ray_starts_the_dashboard_only_when_asked():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()[-2:]
    # False: the enhance job's default (ray.dashboard); None: Ray's own default, which the train job needs.
    assert lines == ["False False", "None True"], out.stdout

"""The enhance job on a multi-node Ray cluster (ray.cluster_utils.Cluster: a head with no CPUs
and two 1-CPU worker nodes), joined with --address as a user joins a real cluster. Its tasks
must land on both worker nodes, and the run must end with every image enhanced."""

from __future__ import annotations

import pytest

from tests.conftest import _free_port
from tests.test_faults import _config, _job, _stray, _tar, _upload

pytestmark = pytest.mark.integration


def test_enhance_job_spreads_over_the_nodes_of_a_cluster(ray_cluster, s3_server, s3_bucket, tmp_path):
    from ray.cluster_utils import Cluster
    from ray.util.state import list_nodes, list_tasks

    from pipeline.io import results

    fs, bucket = s3_bucket
    inputs = _upload(fs, bucket, [_tar(tmp_path / f"{p}.tar", 6, 128, p) for p in "abc"])
    pools = "enhancers:\n  nlmeans: {num_cpus: 0.25, min_actors: 2, max_actors: 2, batch_size: 1}\n"
    config = _config(tmp_path / "conf", pools)
    head = {"num_cpus": 0, "include_dashboard": True, "dashboard_port": _free_port()}
    cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
    try:
        workers = {cluster.add_node(num_cpus=1).node_id for _ in range(2)}
        log = tmp_path / "driver.log"
        driver = _job(["--config", config, "--input", *inputs, "--output", f"s3://{bucket}/out",
                       "--address", cluster.address], log)
        code = driver.wait(timeout=300)
        assert code == 0, log.read_text()[-3000:]
        alive = {n["node_id"] for n in list_nodes(address=cluster.gcs_address, filters=[("state", "=", "ALIVE")])}
        tasks = list_tasks(address=cluster.gcs_address, filters=[("state", "=", "FINISHED")], detail=True,
                           limit=10000, raise_on_missing_output=False)
    finally:
        cluster.shutdown()
    assert workers <= alive
    ran_on = {t["node_id"] for t in tasks if t.get("node_id")}
    # Both worker nodes did work (zero-CPU bookkeeping tasks may also run on the head).
    assert workers <= ran_on, f"tasks ran on {ran_on}; worker nodes {workers}"
    by_node = {n: sum(t.get("node_id") == n for t in tasks) for n in workers}
    assert min(by_node.values()) >= 3, by_node
    rows = results.read_results(f"s3://{bucket}/out", None).to_pylist()
    assert len(rows) == 18 and {r["status"] for r in rows} == {"ok"}
    assert _stray(s3_server, bucket) == []

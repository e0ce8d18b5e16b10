"""Joining or starting Ray the same way in every job and test."""

from __future__ import annotations

import logging
import os
import sys

import ray

# Local runs: no token auth (Ray 2.60 turns it on by default) and no usage reporting.
# Idle task workers kept alive: 4 per core, as the stages run as 1/4-CPU tasks. Ray's default
# keeps as many as there are free CPUs, and the pools' actors hold most of a small node, so
# it killed workers that the next batch had to start again: 19 worker processes started in a
# 1,200-image run of the throughput suite on 2 cores (~1.7 s of CPU each to start), 5 with this.
LOCAL_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
             "RAY_num_workers_soft_limit": str(4 * (os.cpu_count() or 1))}


def init(address: str | None = None, *, quiet: bool = True, dashboard: bool | None = None) -> None:
    """Join `address` (or RAY_ADDRESS) when given, else start a local Ray on this machine.

    `dashboard` applies to a local start only: None is Ray's default (start it when installed),
    which the train job needs: Ray Train v2 polls the state API the dashboard serves."""
    if ray.is_initialized():
        return
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    # "local" starts a new cluster: with no address Ray joins whatever local instance it finds
    # (another job's, a test's), sharing its CPUs and dying with it.
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    ray.init(
        address=address,
        logging_level=logging.WARNING if quiet else logging.INFO,
        log_to_driver=True,
        include_dashboard=dashboard,
        configure_logging=True,
    )
    context = ray.data.DataContext.get_current()
    # Progress bars on a terminal; a log line every few seconds otherwise (CI, schedulers).
    context.enable_progress_bars = sys.stderr.isatty()
    context.print_on_execution_start = False

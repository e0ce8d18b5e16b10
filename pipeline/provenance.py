"""Which code produced a result: the git commit and whether tracked files differed from it.

Benchmark reports and training runs both record it; a run made before its change landed
is marked, so a figure never names a tree that did not hold what was measured.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def git_state(repo: Path, ignore: Sequence[str] = ()) -> tuple[str, bool] | None:
    """(full commit hash, tracked files differ from it) for the checkout at `repo`, or None
    outside git. Paths in `ignore` (relative to `repo`) and untracked files do not count."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      *(f":(exclude){path}" for path in ignore))
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit, bool(changed)) if commit else None

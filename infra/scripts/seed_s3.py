"""Put the bundled sample (degraded tar + clean reference tar) into object storage.

The compose stack's `s3-init` service runs it once, so that `docker compose run enhance` has
something to enhance:

    python infra/scripts/seed_s3.py s3://imgenhance/raw/sample.tar s3://imgenhance/reference/sample-clean.tar

Endpoint and credentials come from the standard AWS variables, as for the jobs. Creates the
bucket when missing and overwrites both objects, so running it again is harmless.
"""

from __future__ import annotations

import posixpath
import sys

from pipeline import sample
from pipeline.io import storage


def upload(local: str, url: str) -> None:
    fs, path = storage.filesystem(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)  # on S3: creates the bucket when missing
    fs.put_file(local, path)
    print(f"{url}: {fs.size(path)} bytes")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    built = sample.ensure_sample()
    upload(built.degraded, argv[0])
    upload(built.reference, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

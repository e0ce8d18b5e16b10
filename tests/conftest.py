"""Shared fixtures: tiny images and archives, a real local Ray and moto's S3 server over HTTP.

Integration fixtures are session-scoped: Ray takes seconds to start, so one Ray serves every
test. AWS variables are set before Ray starts, because workers inherit the environment then.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import tarfile
import zipfile

import cv2
import numpy as np
import pytest
import skimage.data

from pipeline import datasets

SECRET = "moto-secret-key-for-tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 with test credentials in the standard AWS variables."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing-key-id", AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint,
    )
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def ray_cluster(s3_server):
    import ray

    from pipeline import raycluster

    raycluster.init(None)
    yield ray
    ray.shutdown()


@pytest.fixture
def s3_bucket(s3_server):
    import uuid

    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_server)
    name = f"bucket-{uuid.uuid4().hex[:8]}"
    fs.mkdir(name)
    return fs, name


def small(name: str = "astronaut", side: int = 64) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def png_bytes(image: np.ndarray) -> bytes:
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", image)[1].tobytes()


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def noisy(image: np.ndarray, sigma: float = 25.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_tar_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


def write_zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def require_dataset(name: str):
    try:
        return datasets.dataset(name)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))

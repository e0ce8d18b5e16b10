"""Weight files: a bare state_dict (`torch.save`) plus a JSON sidecar `<path>.json` naming the
zoo entry and the builder kwargs, so a file rebuilds its own architecture.

Loading always uses `torch.load(..., weights_only=True)`: weights may come from untrusted
storage (a shared bucket, a downloaded checkpoint), and a full unpickle would execute any
code the file's author chose. weights_only restricts unpickling to tensors and plain
containers and refuses everything else. The architecture is never pickled: it is rebuilt
from code through `build(name, **config)`.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from pipeline.models import build, count_parameters, spec

FORMAT = 1
Source = str | os.PathLike | bytes | bytearray | IO[bytes]


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the JSON sidecar of weight file `path` lives."""
    return Path(f"{os.fspath(path)}.json")


def _check_rebuilds(model: nn.Module, name: str, config: Mapping[str, Any]) -> None:
    """Fail at save time, not at load time, if `config` does not rebuild this architecture."""
    rebuilt = build(name, **config).state_dict()
    mine = model.state_dict()
    mismatched = sorted(k for k in mine.keys() | rebuilt.keys()
                        if k not in mine or k not in rebuilt or mine[k].shape != rebuilt[k].shape)
    if mismatched:
        raise ValueError(f"save_weights: build({name!r}, **{dict(config)}) does not match the model; "
                         f"differing keys: {mismatched[:5]}")


def save_weights(model: nn.Module, path: str | os.PathLike, *, name: str, config: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write `model`'s state_dict to `path` and the metadata to `<path>.json`; returns the metadata.

    `config` holds the builder kwargs (JSON-serialisable), `extra` anything worth keeping
    with the weights (training run, metrics, data).
    """
    spec(name)  # fails loudly on an unknown name
    _check_rebuilds(model, name, config)
    meta = {"format": FORMAT, "name": name, "config": dict(config),
            "parameters": count_parameters(model), "extra": dict(extra or {})}
    text = json.dumps(meta, indent=2, sort_keys=True)  # before writing anything: fails on bad types
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    sidecar_path(path).write_text(text + "\n")
    return meta


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar of weight file `path`."""
    return _parse_meta(sidecar_path(path).read_text())


def _parse_meta(meta: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    data = dict(meta) if isinstance(meta, Mapping) else json.loads(meta)
    missing = {"name", "config"} - data.keys()
    if missing:
        raise ValueError(f"weights metadata lacks {sorted(missing)}")
    return data


def _read_state(source: Source, where: str) -> dict[str, torch.Tensor]:
    """torch.load with weights_only=True, then check it really is a flat tensor dict."""
    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        state = torch.load(handle, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(f"{where}: refused, not a plain tensor state_dict "
                                     f"(loaded with weights_only=True): {err}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{where}: expected a state_dict of tensors, got {type(state).__name__}")
    return dict(state)


def load_weights(source: Source, meta: Mapping[str, Any] | str | bytes | None = None) -> nn.Module:
    """Rebuild the architecture named in the metadata and load the weights; returns it in eval mode.

    `source` is a local path (metadata read from `<path>.json` unless `meta` is given), or
    bytes / a binary file object (then `meta` is required: the sidecar's dict or JSON text).
    Remote URLs are the caller's job (open them with fsspec and pass the file object).
    """
    is_path = isinstance(source, (str, os.PathLike))
    if meta is None:
        if not is_path:
            raise ValueError("load_weights: `meta` is required when loading from bytes or a file object")
        meta = read_meta(source)
    data = _parse_meta(meta)
    where = os.fspath(source) if is_path else f"<{data['name']} weights>"
    state = _read_state(source, where)
    model = build(data["name"], **data["config"])
    model.load_state_dict(state, strict=True)
    return model.eval()

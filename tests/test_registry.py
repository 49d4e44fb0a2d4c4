"""The registry's contract: names, hyperparameter validation, targets (docs/CONTRACTS.md)."""
from __future__ import annotations

import pytest

from adapters import MethodConfigError, apply_method, available_methods, build_config, get_method
from helpers import tiny_roberta

OURS = ["lora", "dora", "vera", "fourierft", "fora", "dfora", "lora_random_mask", "bitfit", "full_ft", "linear_probe"]


def test_methods_registered_with_metadata():
    names = available_methods()
    for name in OURS:
        assert name in names
        spec = get_method(name)
        assert spec.paper
    mergeable = ["lora", "dora", "vera", "fourierft", "fora", "dfora", "lora_random_mask"]
    assert all(get_method(n).mergeable for n in mergeable)
    assert not any(get_method(n).needs_targets for n in ["bitfit", "full_ft", "linear_probe"])


def test_unknown_method_lists_allowed():
    with pytest.raises(MethodConfigError) as e:
        get_method("fourra")
    msg = str(e.value)
    assert "'fourra'" in msg and all(n in msg for n in OURS)


@pytest.mark.parametrize(
    "method, hparams, key",
    [
        ("fora", {"r": 8}, "'n'"),
        ("fora", {"n": 500}, "'r'"),
        ("dfora", {"n": 500}, "'r'"),
        ("lora_random_mask", {"r": 8}, "'n'"),
        ("lora", {}, "'r'"),
        ("vera", {"d_initial": 0.1}, "'r'"),
        ("fourierft", {"scaling": 150.0}, "'n_frequency'"),
    ],
)
def test_missing_hyperparameter(method, hparams, key):
    with pytest.raises(MethodConfigError, match="missing") as e:
        build_config(method, hparams)
    assert str(e.value).startswith(f"{method}:") and key in str(e.value)


@pytest.mark.parametrize(
    "method, hparams, key",
    [
        ("fora", {"n": "500", "r": 8}, "'n'"),
        ("fora", {"n": 500, "r": 8.0}, "'r'"),
        ("fora", {"n": True, "r": 8}, "'n'"),
        ("fora", {"n": 500, "r": 8, "init": "normal"}, "'init'"),
        ("dfora", {"n": 500, "r": 8, "alpha": "big"}, "'alpha'"),
        ("lora", {"r": 8, "dropout": None}, "'dropout'"),
        ("vera", {"r": 256, "d_initial": "0.1"}, "'d_initial'"),
        ("fourierft", {"n_frequency": 1000.5}, "'n_frequency'"),
    ],
)
def test_wrong_type(method, hparams, key):
    with pytest.raises(MethodConfigError, match="must be") as e:
        build_config(method, hparams)
    assert str(e.value).startswith(f"{method}:") and key in str(e.value)


def test_literal_error_lists_choices():
    with pytest.raises(MethodConfigError) as e:
        build_config("fora", {"n": 5, "r": 2, "init": "orthogonal"})
    assert "'kaiming'" in str(e.value) and "'xavier'" in str(e.value)


@pytest.mark.parametrize("method, hparams", [("fora", {"n": 5, "r": 2}), ("lora", {"r": 2}), ("bitfit", {})])
def test_unknown_hyperparameter(method, hparams):
    with pytest.raises(MethodConfigError, match="unknown hyperparameter") as e:
        build_config(method, {**hparams, "rank": 4})
    assert str(e.value).startswith(f"{method}:") and "'rank'" in str(e.value)


@pytest.mark.parametrize(
    "method, hparams, key",
    [
        ("fora", {"n": 0, "r": 8}, "'n'"),
        ("fora", {"n": -1, "r": 8}, "'n'"),
        ("fora", {"n": 10, "r": 0}, "'r'"),
        ("fora", {"n": 10, "r": 4, "alpha": -2.0}, "'alpha'"),
        ("fora", {"n": 10, "r": 4, "dropout": 1.0}, "'dropout'"),
        ("dfora", {"n": 0, "r": 8}, "'n'"),
        ("lora_random_mask", {"n": -5, "r": 8}, "'n'"),
        ("lora", {"r": 0}, "'r'"),
        ("dora", {"r": 4, "alpha": 0}, "'alpha'"),
        ("vera", {"r": -1}, "'r'"),
        ("vera", {"r": 4, "dropout": -0.1}, "'dropout'"),
        ("fourierft", {"n_frequency": 0}, "'n_frequency'"),
    ],
)
def test_bad_value(method, hparams, key):
    with pytest.raises(MethodConfigError) as e:
        build_config(method, hparams)
    assert str(e.value).startswith(f"{method}:") and key in str(e.value)


def test_defaults():
    cfg = build_config("fora", {"n": 500, "r": 32})
    assert (cfg.alpha, cfg.dropout, cfg.init, cfg.shared_locations) == (None, 0.0, "kaiming", False)
    assert cfg.layer_kwargs()["alpha"] == 64.0  # alpha = 2 r (FoRA Table 8)
    assert build_config("vera", {"r": 1024}).d_initial == 0.1
    assert build_config("fourierft", {"n_frequency": 1000}).scaling == 150.0


@pytest.mark.parametrize("method, hparams", [("fora", {"n": 10, "r": 2}), ("lora", {"r": 2})])
def test_targets_required_and_must_match(method, hparams):
    with pytest.raises(MethodConfigError, match=f"^{method}: target_modules"):
        apply_method(tiny_roberta(), method, hparams, target_modules=[])
    with pytest.raises(MethodConfigError, match=f"{method}|target_modules"):
        apply_method(tiny_roberta(), method, hparams, target_modules=["nonexistent_proj"])


def test_classic_methods_ignore_targets():
    adapted = apply_method(tiny_roberta(), "bitfit", {}, target_modules=None)
    assert adapted.num_trainable() > 0


def test_fourierft_too_many_frequencies_is_a_config_error():
    with pytest.raises(MethodConfigError, match="^fourierft:"):
        apply_method(tiny_roberta(), "fourierft", {"n_frequency": 32 * 32 + 1}, target_modules=["query"])


def test_adapters_modules_import_each_other_at_module_top():
    """No import cycle hidden in a function body; errors and catalog import nothing of adapters, so
    every family can import them (and ``register``) at module top."""
    import ast
    from pathlib import Path

    import adapters

    def imports_adapters(node) -> bool:
        if isinstance(node, ast.ImportFrom):
            return (node.module or "").split(".")[0] == "adapters"
        return isinstance(node, ast.Import) and any(a.name.split(".")[0] == "adapters" for a in node.names)

    for path in sorted(Path(adapters.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            assert not any(imports_adapters(n) for n in ast.walk(fn)), f"{path.name}: {fn.name} imports adapters"
        if path.stem in ("errors", "catalog"):
            assert not any(imports_adapters(n) for n in ast.walk(tree)), path.name


def test_registry_reexports_for_callers():
    from adapters import catalog, errors, registry

    assert registry.MethodConfigError is errors.MethodConfigError
    assert registry.register is catalog.register and registry.REGISTRY is catalog.REGISTRY
    assert set(OURS) <= set(catalog.REGISTRY)  # importing adapters ran every family's @register


def test_adapter_save_is_atomic(tmp_path, monkeypatch):
    """A save that dies half-way leaves the previous file intact and no temporary behind."""
    import torch

    from adapters import io

    target = tmp_path / "adapter.safetensors"
    io.save_tensors({"a": torch.ones(2), "c": torch.ones(2, dtype=torch.complex64)}, target)
    before = target.read_bytes()

    def dies_half_way(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(io, "_write_file", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        io.save_tensors({"a": torch.zeros(3)}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["adapter.safetensors"]
    monkeypatch.undo()
    loaded = io.load_tensors(target)
    assert torch.equal(loaded["a"], torch.ones(2)) and torch.equal(loaded["c"], torch.ones(2, dtype=torch.complex64))

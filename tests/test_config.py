"""Config validation: every bad key or value is one error line naming it and what is allowed."""
import shutil
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.config import ConfigError, job_settings, load_table

ROOT = Path(__file__).resolve().parent.parent


def write_cfg(tmp_path, edit) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "glue_base.yaml").read_text())
    edit(cfg)
    p = tmp_path / f"{cfg['table']}.yaml"  # a config is named by its table
    p.write_text(yaml.safe_dump(cfg))
    shutil.copytree(ROOT / "config" / "mini", tmp_path / "mini", dirs_exist_ok=True)
    return p


@pytest.mark.parametrize("name", ["glue_base", "glue_large"])
@pytest.mark.parametrize("scale", ["paper", "mini"])
def test_shipped_configs_validate(name, scale):
    cfg = load_table(ROOT / "config" / f"{name}.yaml", scale)
    assert cfg["_scale"] == scale


def test_fora_table6_settings_resolve():
    cfg = load_table(ROOT / "config" / "glue_base.yaml")
    s = job_settings(cfg, "fora", "stsb", 0)  # FoRA Table 6, BASE, STS-B
    assert (s.hparams["r"], s.hparams["n"], s.epochs, s.batch_size, s.lr_head, s.lr) == (256, 500, 90, 32, 2e-4, 2e-2)
    assert s.warmup_ratio == 0.06 and s.scheduler == "linear"


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["methods"]["fora"].update(method="fourier_magic"), "unknown method 'fourier_magic'; allowed:"),
        (lambda c: c.update(tasks=["sst2", "sst3"]), "unknown task 'sst3'"),
        (lambda c: c["methods"]["fora"]["hparams"].pop("n"), "missing hyperparameter 'n'"),
        (lambda c: c["methods"]["fora"]["hparams"].update(n="many"), "hyperparameter 'n' must be int, got str 'many'"),
        (lambda c: c.update(seeds=3), "seeds: 3 is not of type 'array'"),
        (lambda c: c.update(aggregate="max"), "aggregate: 'max' is not allowed; allowed: median, mean"),
        (lambda c: c.update(epochs=3), "Additional properties are not allowed ('epochs' was unexpected); allowed keys:"),
        (lambda c: c["methods"]["lora"]["defaults"].update(lr="fast"), "methods.lora.defaults.lr: 'fast' is not of type 'number'"),
        (lambda c: c["methods"]["lora"]["tasks"]["sst2"].pop("epochs"), "no 'epochs' for task 'sst2'"),
        (lambda c: c["methods"]["lora"]["defaults"].update(lr=float("nan")), "methods.lora.defaults.lr: nan is not a finite number"),
        (lambda c: c["methods"]["fora"]["tasks"]["sst2"].update(lr=float("inf")), "methods.fora.tasks.sst2.lr: inf is not a finite number"),
        (lambda c: c["train"].update(max_grad_norm=float("nan")), "train.max_grad_norm: nan is not a finite number"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, capsys, edit, expected):
    path = write_cfg(tmp_path, edit)
    with pytest.raises(ConfigError) as e:
        load_table(path)
    assert expected in str(e.value)
    assert "\n" not in str(e.value)
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and len(err.splitlines()) == 1


def test_unknown_scale_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="scale 'huge' is unknown; allowed: paper, mini"):
        load_table(ROOT / "config" / "glue_base.yaml", "huge")
    with pytest.raises(ConfigError, match="does not exist"):
        load_table(tmp_path / "nope.yaml")


def test_bad_model_path_and_bad_data_file_are_one_line_before_training(tmp_path, capsys):
    from dag import tiny_config

    cfg_dir = tiny_config(tmp_path, backbone={"name": "x", "hub_id": "x/y", "local_path": str(tmp_path / "no-model"),
                                              "target_modules": ["query"], "head_modules": ["classifier"]})
    args = ["prep", "--config", str(cfg_dir / "tiny.yaml"), "--scale", "mini", "--task", "rt_polarity", "--out", str(tmp_path / "d")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no-model" in err and len(err.splitlines()) == 1

    (tmp_path / "glue" / "sst2").mkdir(parents=True)
    (tmp_path / "glue" / "sst2" / "train.csv").write_text("")
    (tmp_path / "glue" / "sst2" / "validation.csv").write_text("")
    cfg_dir = tiny_config(tmp_path, tasks=["sst2"], data={"data_dir": str(tmp_path / "glue"), "max_length": 16})
    args[2], args[6] = str(cfg_dir / "tiny.yaml"), "sst2"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "train.csv" in err and len(err.splitlines()) == 1


def test_duplicate_yaml_key_is_one_line_with_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys: a second `seeds: [7]` would silently leave one seed."""
    text = (ROOT / "config" / "glue_base.yaml").read_text()
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("seeds:"))
    path = tmp_path / "glue_base.yaml"
    path.write_text(text + "seeds: [7]\n")
    last = len(path.read_text().splitlines())
    with pytest.raises(ConfigError) as e:
        load_table(path)
    assert str(e.value) == f"{path}: key 'seeds' appears twice in one mapping (lines {first} and {last})"


def test_anchors_and_merge_keys_still_load():
    cfg = load_table(ROOT / "config" / "fora_fig3_glue.yaml")  # uses &anchors and *aliases
    assert cfg["table"] == "fora_fig3_glue"


def test_table_name_must_match_file_name(tmp_path):
    shutil.copytree(ROOT / "config" / "mini", tmp_path / "mini")
    path = tmp_path / "glue_copy.yaml"
    path.write_text((ROOT / "config" / "glue_base.yaml").read_text())
    with pytest.raises(ConfigError, match=r"table: 'glue_base' differs from the file name; name the file glue_base.yaml"):
        load_table(path)

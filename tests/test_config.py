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
    p = tmp_path / "t.yaml"
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

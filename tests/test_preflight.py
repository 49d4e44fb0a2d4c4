"""Issue 17: a paper-scale run fails in seconds, before any job, when a table's model or data is not
reachable (harness/preflight.py; the Snakefile's onstart), one line per problem naming the table,
the dotted config key and the remedy; and a failed job's one-line cause reaches the console without
a profile (the Snakefile's onerror)."""
from __future__ import annotations

import shutil

import pytest
import yaml

from dag import ROOT, prep_dir, snakemake, tiny_config
from harness.cli import main
from harness.config import ConfigError, load_table
from harness.preflight import preflight, tables_of_targets
from paper_fixtures import glue_save_to_disk, roberta_backbone


@pytest.fixture(scope="module")
def local_copies(tmp_path_factory):
    """A tiny RobertaForMaskedLM saved with save_pretrained and GLUE as save_to_disk leaves it."""
    root = tmp_path_factory.mktemp("copies")
    return roberta_backbone(root / "roberta"), glue_save_to_disk(root / "glue")


def _glue(**sources) -> dict:
    cfg = load_table(ROOT / "config" / "glue_base.yaml")
    cfg["tasks"] = ["sst2", "rte"]
    for key, value in sources.items():
        section, name = key.split("__")
        cfg[section][name] = value
    return cfg


def test_missing_model_and_data_are_one_line_each_naming_table_key_and_remedy(tmp_path):
    cfg = _glue(backbone__local_path=str(tmp_path / "roberta"), data__data_dir=str(tmp_path / "glue"))
    lines = preflight({"glue_base": cfg}, {"glue_base": {"sst2", "rte"}})
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"glue_base: backbone.local_path: model folder {tmp_path / 'roberta'} (config key "
                               "`backbone.local_path`) does not exist")
    assert lines[1].startswith("glue_base/rte: data.data_dir: ") and "does not exist" in lines[1]
    assert "`data.data_dir`" in lines[1] and lines[2].startswith("glue_base/sst2: data.data_dir: ")


def test_local_copies_in_the_real_formats_pass(local_copies):
    model, glue = local_copies
    cfg = _glue(backbone__local_path=str(model), data__data_dir=str(glue))
    assert preflight({"glue_base": cfg}, {"glue_base": {"sst2", "rte"}}) == []


def test_a_model_folder_without_weights_or_a_tokenizer_is_named(local_copies, tmp_path):
    model, glue = local_copies
    no_weights = tmp_path / "no_weights"
    shutil.copytree(model, no_weights, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    lines = preflight({"glue_base": _glue(backbone__local_path=str(no_weights))}, {})
    assert len(lines) == 1 and "has no weights" in lines[0] and "`hf download FacebookAI/roberta-base" in lines[0]
    no_tok = tmp_path / "no_tokenizer"
    shutil.copytree(model, no_tok, ignore=shutil.ignore_patterns("tokenizer*", "vocab*", "merges*", "special_tokens*"))
    lines = preflight({"glue_base": _glue(backbone__local_path=str(no_tok))}, {})
    assert len(lines) == 1 and lines[0].startswith("glue_base: backbone.local_path: cannot load a tokenizer"), lines


def test_offline_hub_sources_not_cached_are_named_with_the_keys_to_set():
    """Nothing set, the hub offline (the tests' environment) and nothing cached: both keys named."""
    lines = preflight({"glue_base": _glue()}, {"glue_base": {"rte"}})
    assert len(lines) == 2, lines
    assert lines[0].startswith("glue_base: backbone.hub_id: model 'FacebookAI/roberta-base' is neither a folder")
    assert "`hf download FacebookAI/roberta-base --local-dir <folder>`" in lines[0] and "`backbone.local_path" in lines[0]
    assert lines[1].startswith("glue_base/rte: data.data_dir (unset, the hub's copy is not cached): ")


def test_the_mini_scale_has_nothing_to_check():
    cfg = load_table(ROOT / "config" / "glue_base.yaml", "mini")
    assert preflight({"glue_base": cfg}, {"glue_base": set(cfg["tasks"])}) == []


def test_targets_name_tables():
    names = {"glue_base", "vit_fora_base"}
    assert tables_of_targets(["tables/glue_base.csv", "tables/efficiency_vit_fora_base.csv"], names) == sorted(names)
    assert tables_of_targets(["results/paper/glue_base/lora/rte/seed0/train.json", "glue_base"], names) == ["glue_base"]
    assert tables_of_targets([], names) == sorted(names)
    with pytest.raises(ConfigError, match="'tables/nope.csv' names no table"):
        tables_of_targets(["tables/nope.csv"], names)


def test_the_command_prints_one_line_per_problem_and_fails(tmp_path, capsys, monkeypatch, local_copies):
    cfg_dir = tmp_path / "config"
    cfg_dir.mkdir()
    raw = yaml.safe_load((ROOT / "config" / "glue_base.yaml").read_text())
    raw["backbone"]["local_path"], raw["data"]["data_dir"] = str(tmp_path / "missing"), str(local_copies[1])
    (cfg_dir / "glue_base.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"preflight: 1 problem\(s\)"):
        main(["preflight", "tables/glue_base.csv", "--config-dir", str(cfg_dir)])
    err = capsys.readouterr().err.splitlines()
    assert err == [l for l in err if l.startswith("preflight: glue_base: backbone.local_path: model folder")]
    raw["backbone"]["local_path"] = str(local_copies[0])
    (cfg_dir / "glue_base.yaml").write_text(yaml.safe_dump(raw))
    assert main(["preflight", "glue_base", "--config-dir", str(cfg_dir)]) == 0
    assert capsys.readouterr().out.strip() == "preflight: ok (paper scale)"


@pytest.mark.slow
def test_a_paper_run_stops_before_any_job_and_a_failed_jobs_cause_reaches_the_console(tmp_path):
    """Through snakemake, no profile: (1) a paper-scale run whose model folder is missing stops in
    onstart with the preflight line, no job started; (2) a mini job that fails prints its one-line
    error (from its log) at the end of the run."""
    cfg_dir = tiny_config(tmp_path, backbone={**yaml.safe_load((ROOT / "tests/data/tiny_config/tiny.yaml").read_text())[
        "backbone"], "local_path": str(tmp_path / "no_model")})
    work = tmp_path / "paper"
    out = snakemake(work, cfg_dir, "tables/tiny.csv", scale="paper")
    assert out.returncode != 0
    assert f"preflight: tiny: backbone.local_path: model folder {tmp_path / 'no_model'}" in out.stderr, out.stderr[-3000:]
    assert not (work / "logs").exists() and not (work / "data").exists()  # no job ran
    assert snakemake(work, cfg_dir, "tables/tiny.csv", scale="paper", extra=("-n",)).returncode == 0  # dry run: offline, no check

    cfg_dir, work = tiny_config(tmp_path / "mini"), tmp_path / "mini_work"
    prepared = prep_dir(cfg_dir, "tiny", "rt_polarity")
    (work / prepared).mkdir(parents=True)  # prepared data without its files: the train job fails
    out = snakemake(work, cfg_dir, "results/mini/tiny/lora/rt_polarity/seed0/train.json")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "Why the jobs failed" in text, text[-3000:]
    line = next(l for l in text.splitlines() if l.startswith("  train (logs/mini/train/tiny/lora/rt_polarity/seed0.log): "))
    assert line.endswith(f"error: prepared data {prepared} is missing (no meta.json): run the prepare step for this task first")

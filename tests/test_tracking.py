"""Optional MLflow tracking: a tiny run trained with tracking on lands in a local store (tmp_path),
read back with MLflow's client; off by default; the command line's setting wins; bad values name the key."""
import json
from dataclasses import replace

import pytest

from dag import tiny_config
from harness.config import backbone_path, job_settings, load_table
from harness.tracking import TrackingError, enabled, track_job, tracking_mode

mlflow = pytest.importorskip("mlflow")


def test_a_tiny_run_is_logged_to_a_local_store_and_read_back(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from harness.prepare import prepare
    from harness.train import train

    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.delenv("FPB_TRACKING", raising=False)
    cfg = load_table(tiny_config(tmp_path) / "tiny.yaml", "mini")
    cfg["data"] |= {"max_length": 16, "max_train": 32, "max_eval": 16}
    cfg["tracking"] = "mlflow"
    prepare(cfg, "dal_pleasantness", tmp_path / "data", backbone_path(cfg))
    s = replace(job_settings(cfg, "lora", "dal_pleasantness", 0), epochs=2)
    out = tmp_path / "job"
    train(s, cfg, data_dir=tmp_path / "data", out_dir=out, checkpoint=tmp_path / "ck.pt", threads=1)
    record = json.loads((out / "train.json").read_text())

    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name(f"{cfg['table']} (mini)")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "lora/dal_pleasantness/seed0" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == str(s.lr) and run.data.params["epochs"] == "2"
    assert run.data.params["method_config.r"] == str(record["method_config"]["r"])
    name = record["metric_name"]
    per_epoch = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
    assert sorted(per_epoch) == [(h["epoch"], h["metric"]) for h in record["history"]]  # the same records
    assert run.data.metrics["best_metric"] == record["best_metric"]
    assert run.data.metrics["trainable_params"] == record["trainable_params"]
    assert run.data.tags["table"] == cfg["table"] and run.data.tags["scale"] == "mini"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"adapter.safetensors", "predictions.npz", "profile.json", "train.json", "eval.json"}
    local = client.download_artifacts(run.info.run_id, "adapter.safetensors", str(tmp_path / "back"))
    assert open(local, "rb").read() == (out / "adapter.safetensors").read_bytes()


def test_off_by_default_and_the_command_line_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("FPB_TRACKING", raising=False)
    monkeypatch.chdir(tmp_path)
    assert not enabled({}) and track_job({}, tmp_path) is None
    assert not (tmp_path / "mlruns").exists()
    assert enabled({"tracking": "mlflow"}) and not enabled({"tracking": False})  # YAML's bare `off`
    monkeypatch.setenv("FPB_TRACKING", "off")  # --config tracking=off
    assert not enabled({"tracking": "mlflow"})
    monkeypatch.setenv("FPB_TRACKING", "mlflow")
    assert enabled({})


def test_a_bad_mode_names_the_key_and_the_allowed_values():
    with pytest.raises(TrackingError, match=r"--config tracking: 'wandb' is not a tracking mode; allowed: off, mlflow"):
        tracking_mode("wandb", "--config tracking")


def test_a_store_that_is_down_warns_and_the_job_stands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FPB_TRACKING", "mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "store").as_uri())
    (tmp_path / "job").mkdir()  # no train.json: logging cannot work
    assert track_job({"_scale": "mini"}, tmp_path / "job") is None
    assert "warning: MLflow tracking of" in capsys.readouterr().err

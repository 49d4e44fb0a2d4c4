"""Tables: aggregate each table's runs over seeds next to the paper's values (and draw its figure)."""


rule table:
    """The paper table: aggregate over seeds, next to the paper's values, with its scale; and its figure."""
    input:
        evals=lambda w: table_jobs(w.table, "eval.json"),
        data=lambda w: [data_dir(w.table, t) for t in TABLES[w.table]["tasks"]],
        efficiency="tables/efficiency_{table}.csv",  # asking for a table also gives its efficiency table
        paper_values=lambda w: TABLES[w.table]["paper_values"],  # an edited paper value redraws the table
    output:
        csv="tables/{table}.csv",
        meta="tables/{table}.meta.json",
        png="figures/{table}.png",
        pdf="figures/{table}.pdf",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
        metas=lambda w, input: [f"{d}/meta.json" for d in input.data],
        figure=lambda w, output: output.png[: -len(".png")],
        runs=lambda w: labelled_runs(w.table, "eval.json"),
        identity=table_identity,  # not in the command: a changed table config (labels, aggregate, ...) redraws it
    shell:
        "{PY} -m harness table --config {params.cfg} --scale {SCALE} --out {output.csv} "
        "--figure {params.figure} --data-meta {params.metas} --evals {params.runs}"

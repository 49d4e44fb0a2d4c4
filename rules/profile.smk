def table_jobs(table, name):
    cfg = TABLES[table]
    return [
        f"results/{SCALE}/{table}/{m}/{t}/seed{s}/{name}"
        for m in cfg["methods"] for t in cfg["tasks"] for s in cfg["seeds"]
    ]


rule profile:
    """Wall-clock, step time, peak memory and samples/s of every job of a table."""
    input:
        lambda w: table_jobs(w.table, "profile.json"),
    output:
        "tables/efficiency_{table}.csv",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
    shell:
        "{PY} -m harness profile --config {params.cfg} --scale {SCALE} --out {output} {input}"

"""The report (one HTML file of every table and figure) and the parameter audit it includes."""

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
        "{PY} -m harness report --tables tables --figures figures --scale {SCALE} --out {output}"

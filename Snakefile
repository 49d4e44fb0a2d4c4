"""fourier-peft-bench: [backbone] -> prep -> [tune] -> train (backbone x method x task x seed; scores itself) -> profile -> tables.

Targets come from the table configs in config/: `snakemake --cores all tables/glue_base.csv`.
`--config scale=mini` (what profiles/mini sets) runs the same DAG at the mini scale on CPU.
Every config is validated (schema, registry, tasks) when this file is parsed, before any job runs.
Helpers live in rules/common.smk (included first); each rule file holds one stage's rules.
"""

include: "rules/common.smk"

wildcard_constraints:
    scale="paper|mini",
    table="|".join(TABLES),
    method="[A-Za-z0-9_.]+",
    task="[a-z0-9_]+",
    seed="[0-9]+",
    dataset="[A-Za-z0-9_.-]+",
    backbone="[A-Za-z0-9_.-]+",

localrules: all, profile, table, estimate, audit, report


include: "rules/data.smk"
include: "rules/tune.smk"
include: "rules/train.smk"
include: "rules/profile.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"
include: "rules/report.smk"


onstart:
    preflight_or_stop(workflow.dag)  # paper scale: every model and data source reachable, before any job


onerror:
    print_failed_job_errors(log)  # each failed job's one-line cause on the console, from its log


rule all:
    input:
        [f"tables/{t}.csv" for t in TABLES],
        [f"tables/efficiency_{t}.csv" for t in TABLES],

"""The ``glue`` suite's tasks, paper and mini in one table: GLUE (FoRA Table 1, LFMA Tables 2-3, FAA)
and the mini text tasks built from files a package ships (:mod:`harness.suites.glue.mini`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.suites.base import TaskSpec
from harness.suites.glue import mini

__all__ = ["GLUE_HUB_ID", "GLUE_TASKS", "MINI_TASKS", "TASKS", "TextTask"]

GLUE_HUB_ID = "nyu-mll/glue"


@dataclass(frozen=True, kw_only=True)
class TextTask(TaskSpec):
    """A text-classification task: which columns feed the tokenizer (one, or two for pairs)."""

    text_keys: tuple[str, ...]
    label_key: str = "label"
    hub_id: str | None = None
    hub_config: str | None = None
    train_split: str = "train"
    eval_split: str = "validation"
    # the original distribution (download_glue_data.py): its folder, label names as its files write
    # them (ids as nyu-mll/glue's ClassLabel), its column names where they differ from the hub's
    # ({our name: theirs}), and the columns of a header-less file (CoLA)
    folder: str | None = None
    label_names: tuple[str, ...] | None = None
    file_columns: dict[str, str] | None = field(default=None, compare=False)
    headerless_columns: tuple[str, ...] | None = None

    @property
    def is_pair(self) -> bool:
        return len(self.text_keys) == 2


def _glue(name: str, text_keys: tuple[str, ...], num_labels: int, metric: str, description: str,
          eval_split: str = "validation", **original) -> TextTask:
    return TextTask(name=name, num_labels=num_labels, metric=metric, description=description, text_keys=text_keys,
                    hub_id=GLUE_HUB_ID, hub_config=name, eval_split=eval_split, **original)


# Label names and ids as nyu-mll/glue (huggingface/datasets glue.py); folders and columns as the
# original files (W4ngatang's download_glue_data.py; read as glue.py's _generate_examples does).
_ENTAIL = ("entailment", "not_entailment")


# Metrics as FoRA Table 1 / LFMA Table 2 report GLUE: accuracy, except CoLA (MCC) and STS-B (PCC).
GLUE_TASKS: dict[str, TextTask] = {
    t.name: t
    for t in [
        _glue("sst2", ("sentence",), 2, "accuracy", "SST-2: movie-review sentence sentiment", folder="SST-2",
              label_names=("negative", "positive")),
        _glue("mrpc", ("sentence1", "sentence2"), 2, "accuracy", "MRPC: are two news sentences paraphrases",
              folder="MRPC", label_names=("not_equivalent", "equivalent"),
              file_columns={"sentence1": "#1 String", "sentence2": "#2 String", "label": "Quality"}),
        _glue("cola", ("sentence",), 2, "matthews", "CoLA: is the sentence grammatical", folder="CoLA",
              label_names=("unacceptable", "acceptable"), headerless_columns=("source", "label", "mark", "sentence")),
        _glue("qnli", ("question", "sentence"), 2, "accuracy", "QNLI: does the sentence answer the question",
              folder="QNLI", label_names=_ENTAIL),
        _glue("rte", ("sentence1", "sentence2"), 2, "accuracy", "RTE: does sentence 1 entail sentence 2", folder="RTE",
              label_names=_ENTAIL),
        _glue("stsb", ("sentence1", "sentence2"), 1, "pearson", "STS-B: semantic similarity 0-5", folder="STS-B",
              file_columns={"label": "score"}),
        _glue("mnli", ("premise", "hypothesis"), 3, "accuracy", "MNLI: entailment/neutral/contradiction (matched dev)",
              "validation_matched", folder="MNLI", label_names=("entailment", "neutral", "contradiction"),
              file_columns={"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}),
        _glue("qqp", ("question1", "question2"), 2, "accuracy", "QQP: are two Quora questions duplicates", folder="QQP",
              label_names=("not_duplicate", "duplicate"), file_columns={"label": "is_duplicate"}),
        _glue("wnli", ("sentence1", "sentence2"), 2, "accuracy", "WNLI: pronoun-resolution entailment", folder="WNLI",
              label_names=("not_entailment", "entailment")),
    ]
}


# The mini text tasks (CPU, offline): same tokenization, model class and scoring as GLUE.
def _mini(name: str, text_keys: tuple[str, ...], num_labels: int, metric: str, description: str) -> TextTask:
    return TextTask(name=name, num_labels=num_labels, metric=metric, description=description, text_keys=text_keys,
                    build=mini.BUILDERS[name])


MINI_TASKS: dict[str, TextTask] = {
    t.name: t
    for t in [
        _mini("rt_polarity", ("text",), 2, "accuracy", "Rotten Tomatoes snippet: fresh (1) or rotten (0); SST-2 analogue"),
        _mini("rt_pair", ("text_a", "text_b"), 2, "accuracy",
              "two Rotten Tomatoes snippets, one fresh one rotten: is the first the fresh one"),
        _mini("rt_consensus", ("text_a", "text_b"), 2, "accuracy",
              "two Rotten Tomatoes snippets with the same verdict: both fresh (1) or both rotten (0)"),
        _mini("dal_pair", ("word_a", "word_b"), 2, "accuracy",
              "two DAL words whose pleasantness ratings differ by >= 0.5: is the first the more pleasant"),
        _mini("dal_pleasantness", ("word",), 1, "pearson",
              "Whissell's DAL: a word's rated pleasantness (1-3, given as rating - 2); STS-B analogue in metric"),
    ]
}

TASKS: dict[str, TextTask] = {**GLUE_TASKS, **MINI_TASKS}

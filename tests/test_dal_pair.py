"""dal_pair, the mini pair task: real ratings, no word shared across splits, labels follow the ratings."""
import numpy as np

from harness.suites.glue.mini import BUILDERS, _dal_words


def load_raw(name, seed):
    return BUILDERS[name](seed)[0]


def test_dal_pair_labels_follow_the_human_ratings():
    words, ratings, _ = _dal_words()
    rating = dict(zip(words, ratings.tolist()))
    dd = load_raw("dal_pair", seed=0)
    train_words = set(dd["train"]["word_a"]) | set(dd["train"]["word_b"])
    val_words = set(dd["validation"]["word_a"]) | set(dd["validation"]["word_b"])
    assert not train_words & val_words
    for split in ("train", "validation"):
        d = dd[split][:]
        diff = np.array([rating[a] - rating[b] for a, b in zip(d["word_a"], d["word_b"])])
        assert (np.abs(diff) >= 0.5).all()
        assert ((diff > 0).astype(int) == np.array(d["label"])).all()
        assert 0.4 < np.mean(d["label"]) < 0.6
    assert load_raw("dal_pair", seed=0)["train"]["word_a"] == dd["train"]["word_a"]
    assert load_raw("dal_pair", seed=1)["train"]["word_a"] != dd["train"]["word_a"]

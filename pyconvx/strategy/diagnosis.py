"""Bias, variance, data mismatch and dev-set overfitting from a model's error rates, with
human-level performance as the proxy for the Bayes (lowest achievable) error.

The gaps, each between two neighbouring error rates:

=================  ===========================  =========================================
gap                definition                   what closes it
=================  ===========================  =========================================
avoidable bias     train - Bayes proxy          a bigger network, training longer, a
                                                better optimiser, architecture search
variance           train-dev - train            more data, regularisation, augmentation
                   (dev - train without a
                   training-dev set)
data mismatch      dev - train-dev              error analysis of the mismatch, making the
                                                training data more like the dev data
                                                (artificial data synthesis)
dev overfitting    test - dev                   a bigger dev set
=================  ===========================  =========================================

>>> report = diagnose(train_error=0.08, dev_error=0.10, human_error=0.01)
>>> report.focus, round(report.avoidable_bias, 3), round(report.variance, 3)
('avoidable bias', 0.07, 0.02)
"""
from ._common import error_rate, percent, table

__all__ = ["diagnose", "Diagnosis", "human_level_error", "HumanLevel", "RECOMMENDATIONS"]

RECOMMENDATIONS = {
    "avoidable bias": ["train a bigger network", "train longer", "use a better optimiser (momentum, RMSprop, Adam)",
                       "search for a better architecture or hyperparameters"],
    "variance": ["get more training data", "regularise (L2 weight decay, dropout)", "augment the training data",
                 "search for a better architecture or hyperparameters"],
    "data mismatch": ["do error analysis to understand how training and dev data differ",
                      "make the training data more like the dev/test data, or collect more data like it",
                      "synthesise artificial data resembling the dev/test data (beware of covering only a small "
                      "subset of the possibilities)"],
    "dev overfitting": ["get a bigger dev set (the dev set has been tuned to)"],
}


class HumanLevel:
    """Human-level error from several references: `error` is the lowest, the proxy for Bayes
    error, and `reference` names it; `references` {name: error} sorted from best to worst.
    str() is a table with an explanation."""

    def __init__(self, references):
        self.references = dict(sorted(references.items(), key=lambda item: item[1]))
        self.reference, self.error = next(iter(self.references.items()))
        self.explanation = (
            f"The best reference, {self.reference} ({percent(self.error)}), is the proxy for the Bayes error: no "
            "system can beat the Bayes error and some humans reach the best reference, so Bayes is at most that "
            "low. A weaker reference suffices when the application only has to match it (e.g. a system "
            "publishable or deployable once it beats a typical human), and while the training error is far "
            "above every reference the choice does not change the diagnosis. Once the training error "
            "approaches the references, use the best one, or the avoidable bias looks smaller than it is.")

    def __repr__(self):
        return f"HumanLevel(error={self.error!r}, reference={self.reference!r})"

    def __str__(self):
        rows = [(name, percent(err), "<- proxy for Bayes error" if name == self.reference else "")
                for name, err in self.references.items()]
        return table(("reference", "error", ""), rows) + "\n" + self.explanation


def human_level_error(references):
    """The human-level error among {reference name: error rate}: the lowest rate.

    >>> level = human_level_error({"typical human": 0.03, "typical doctor": 0.01,
    ...                            "experienced doctor": 0.007, "team of experienced doctors": 0.005})
    >>> level.error, level.reference
    (0.005, 'team of experienced doctors')
    """
    if not isinstance(references, dict) or not references:
        raise ValueError(f"references must be a non-empty dict of name -> error rate, got references={references!r}")
    return HumanLevel({str(name): error_rate(err, f"references[{name!r}]") for name, err in references.items()})


class Diagnosis:
    """The report of `diagnose`: the error rates, the gaps (None where a rate is missing),
    `focus`, `recommendations`, `cannot_conclude` (what the missing rates leave open) and
    `notes` (legal but unusual input); str() is the whole report as text."""

    GAPS = ("avoidable bias", "variance", "data mismatch", "dev overfitting")

    def __init__(self, errors, bayes_name):
        self.errors, self.bayes_name = errors, bayes_name
        proxy, train = errors.get("bayes"), errors["train"]
        train_dev, dev, test = errors.get("train-dev"), errors["dev"], errors.get("test")
        self.avoidable_bias = None if proxy is None else train - proxy
        self.variance = (dev if train_dev is None else train_dev) - train
        self.data_mismatch = None if train_dev is None else dev - train_dev
        self.dev_overfitting = None if test is None else test - dev
        gaps = dict(zip(self.GAPS, (self.avoidable_bias, self.variance, self.data_mismatch, self.dev_overfitting)))
        known = {name: gap for name, gap in gaps.items() if gap is not None}
        largest = max(known, key=known.get)
        self.focus = largest if known[largest] > 0 else None
        self.recommendations = list(RECOMMENDATIONS.get(self.focus, []))
        self.cannot_conclude = self._open_questions()
        self.notes = self._unusual()

    def _open_questions(self):
        open_questions = []
        if self.avoidable_bias is None:
            open_questions.append(
                f"avoidable bias: no human_error or bayes_error, so whether the training error "
                f"({percent(self.errors['train'])}) is near the best achievable is unknown; a focus on "
                "variance or mismatch may be premature if the task is easy for humans")
        if self.data_mismatch is None:
            open_questions.append("data mismatch: no train_dev_error, so the dev - train gap "
                                  f"({percent(self.variance)}) mixes variance with any training/dev mismatch")
        if self.dev_overfitting is None:
            open_questions.append("dev overfitting: no test_error")
        return open_questions

    def _unusual(self):
        e = self.errors
        notes = []
        pairs = [("train", "train-dev"), ("train-dev", "dev"), ("dev", "test")]
        if "train-dev" not in e:
            pairs.insert(0, ("train", "dev"))
        for low, high in pairs:
            if low in e and high in e and e[low] > e[high]:
                notes.append(f"{low} error ({percent(e[low])}) is above {high} error ({percent(e[high])}): unusual; "
                             f"the {high} data may be easier, or too small to measure reliably")
        if "bayes" in e and e["train"] < e["bayes"]:
            notes.append(f"train error ({percent(e['train'])}) is below the {self.bayes_name} "
                         f"({percent(e['bayes'])}): past human level the proxy no longer bounds the Bayes error, "
                         "so the avoidable bias is unknown and progress usually slows")
        return notes

    def __repr__(self):
        return f"Diagnosis(focus={self.focus!r})"

    def rows(self):
        """(set, error, gap name, gap) from the Bayes proxy to test, for the rates given; the gap
        is the one ending at that set ("" and None for the first row; None where unknown)."""
        gap_after = {"train": ("avoidable bias", self.avoidable_bias), "dev": ("data mismatch", self.data_mismatch),
                     "test": ("dev overfitting", self.dev_overfitting)}
        gap_after["train-dev" if "train-dev" in self.errors else "dev"] = ("variance", self.variance)
        return [(self.bayes_name if key == "bayes" else key, self.errors.get(key)) + gap_after.get(key, ("", None))
                for key in ("bayes", "train", "train-dev", "dev", "test") if key in self.errors or key == "bayes"]

    def __str__(self):
        rows = [(name, "not given" if error is None else percent(error), gap,
                 "" if not gap else "unknown" if value is None else percent(value))
                for name, error, gap, value in self.rows()]
        lines = [table(("set", "error", "gap", "size"), rows, "lrlr"), "",
                 f"focus: {self.focus or 'none (no gap is positive)'}"]
        lines += [f"  - {tactic}" for tactic in self.recommendations]
        lines += ["cannot conclude:"] + [f"  - {text}" for text in self.cannot_conclude] if self.cannot_conclude else []
        lines += ["notes:"] + [f"  - {text}" for text in self.notes] if self.notes else []
        return "\n".join(lines)


def diagnose(train_error, dev_error, human_error=None, bayes_error=None, train_dev_error=None, test_error=None):
    """Split the errors into avoidable bias, variance, data mismatch and dev overfitting and say
    which to work on first (the largest gap; a gap left unknown by a missing rate is never the
    focus, and the report says what it cannot conclude).

    All rates are floats in [0, 1]; human_error may also be the result of `human_level_error`.
    bayes_error, when known (e.g. from a synthetic task), takes precedence over human_error.
    Returns a `Diagnosis`; `focus` is None only when no known gap is positive.

    >>> report = diagnose(0.01, 0.10, human_error=0.01, train_dev_error=0.015, test_error=0.11)
    >>> report.focus, report.recommendations[0]
    ('data mismatch', 'do error analysis to understand how training and dev data differ')
    >>> print(report)  # doctest: +ELLIPSIS
    set          error  gap              size
    -----------------------------------------
    human-level   1.0%
    train         1.0%  avoidable bias   0.0%
    train-dev     1.5%  variance         0.5%
    dev          10.0%  data mismatch    8.5%
    test         11.0%  dev overfitting  1.0%
    <BLANKLINE>
    focus: data mismatch
    ...
    """
    errors = {"train": error_rate(train_error, "train_error"), "dev": error_rate(dev_error, "dev_error")}
    for key, value, name in (("train-dev", train_dev_error, "train_dev_error"), ("test", test_error, "test_error")):
        if value is not None:
            errors[key] = error_rate(value, name)
    bayes_name = "Bayes error"
    if bayes_error is not None:
        errors["bayes"] = error_rate(bayes_error, "bayes_error")
    elif human_error is not None:
        bayes_name = "human-level"
        if isinstance(human_error, HumanLevel):
            bayes_name, human_error = f"human ({human_error.reference})", human_error.error
        errors["bayes"] = error_rate(human_error, "human_error")
    return Diagnosis(errors, bayes_name)

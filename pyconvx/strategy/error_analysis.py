"""Error analysis: look at misclassified dev examples, tag each with the causes you see, and
count which cause is worth fixing first.

Typical use: `sample_errors` picks about 100 misclassified dev examples, you look at each and
`tag` it with its categories (an example may have several) and a note, then `table()` shows
how many of the examined errors each category explains, and `ceiling(category)` the dev error
left if that category were fixed entirely, the most that working on it can give.

>>> analysis = ErrorAnalysis(["dog", "great cat", "blurry"], dev_error=0.10)
>>> analysis.tag([0, 1, 2], "dog")
>>> analysis.tag(3, "blurry", "great cat", note="a lion in fog")
>>> analysis.ceiling("dog")
0.025
"""
import numpy as np

from ..label_metrics import label_pair
from ._common import count, error_rate, percent, table

__all__ = ["ErrorAnalysis", "ErrorTable", "sample_errors", "mislabeled_analysis", "MislabeledAnalysis"]


def sample_errors(y_true, y_pred, n=100, seed=None):
    """Up to n indices of misclassified examples (y_true != y_pred), drawn at random without
    replacement and returned sorted; all of them when there are fewer than n.

    y_true, y_pred (N,) labels -> int64 indices (min(n, errors),).

    >>> sample_errors([0, 1, 1, 0, 1], [0, 0, 1, 1, 0], n=2, seed=0).tolist()
    [3, 4]
    """
    y_true, y_pred = label_pair(y_true, y_pred)
    n = count(n, "n", minimum=1)
    wrong = np.flatnonzero(y_true != y_pred)
    picked = np.random.default_rng(seed).choice(wrong, size=min(n, len(wrong)), replace=False)
    return np.sort(picked).astype(np.int64)


class ErrorTable:
    """The result of ErrorAnalysis.table(): `rows` of (category, count, fraction of the examined
    errors), then, for a binary task, "false positives" and "false negatives"; `examined` the
    number of tagged examples; str() is the table."""

    def __init__(self, rows, examined):
        self.rows, self.examined = rows, examined

    def as_dict(self):
        """{category: (count, fraction)}."""
        return {name: (n, fraction) for name, n, fraction in self.rows}

    def __str__(self):
        body = table(("category", "errors", "% of examined"),
                     [(name, n, percent(fraction)) for name, n, fraction in self.rows])
        return body + f"\n{self.examined} errors examined; an error may be in several categories"


class ErrorAnalysis:
    """Tags of misclassified dev examples by index.

    categories: the category names (any number). Then either
    - y_true, y_pred (N,) labels of the whole dev set: the dev error, the dev size and which
      examples are misclassified follow from them (tagging a correct example is an error), and
      for two labels the table splits errors into false positives and false negatives, positive
      being `pos_label`; or
    - dev_error (a rate in [0, 1]) alone, when you only have the examples to look at.

    `ceiling` needs one of the two. Tags: `tags` {index: set of categories}, `notes` {index: str}.
    """

    def __init__(self, categories, y_true=None, y_pred=None, dev_error=None, pos_label=1):
        categories = [str(c) for c in categories]
        if not categories or len(set(categories)) != len(categories):
            raise ValueError(f"categories must be distinct names, at least one, got categories={categories!r}")
        self.categories, self.pos_label = categories, pos_label
        self.tags, self.notes = {}, {}
        self.y_true = self.y_pred = None
        if (y_true is None) != (y_pred is None):
            raise ValueError("give both y_true and y_pred, or neither")
        if y_true is not None:
            self.y_true, self.y_pred = label_pair(y_true, y_pred)
            measured = float(np.mean(self.y_true != self.y_pred))
            if dev_error is not None and abs(error_rate(dev_error, "dev_error") - measured) > 1e-12:
                raise ValueError(f"dev_error={dev_error!r} disagrees with y_true and y_pred, whose error is {measured}")
            dev_error = measured
        self.dev_error = None if dev_error is None else error_rate(dev_error, "dev_error")

    def tag(self, index, *categories, note=None):
        """Record that the misclassified example(s) `index` (an int or a sequence of ints) show
        `categories` (zero or more of the declared names) and optionally a note; tags of repeated
        calls accumulate. An example tagged with no category still counts as examined."""
        unknown = [c for c in categories if c not in self.categories]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; declared: {self.categories}")
        indices = np.atleast_1d(np.asarray(index))
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise ValueError(f"index must be an int or a sequence of ints, got index={index!r}")
        if self.y_true is not None:
            outside = indices[(indices < 0) | (indices >= len(self.y_true))]
            if outside.size:
                raise ValueError(f"index {outside.tolist()} is outside the dev set of {len(self.y_true)} examples")
            correct = indices[self.y_true[indices] == self.y_pred[indices]]
            if correct.size:
                raise ValueError(f"examples {correct.tolist()} are classified correctly: only errors are tagged")
        for i in indices.tolist():
            self.tags.setdefault(i, set()).update(categories)
            if note is not None:
                self.notes[i] = note

    def table(self):
        """Counts and fractions of the examined errors per category (overlapping, so the
        fractions may add up to more than 100%), with false positives and false negatives when
        y_true and y_pred of a binary task were given."""
        examined = len(self.tags)
        if not examined:
            raise ValueError("no example is tagged yet: call tag(index, category, ...) first")
        rows = [(c, n, n / examined) for c in self.categories
                for n in [sum(c in tags for tags in self.tags.values())]]
        if self.y_true is not None and len(np.union1d(self.y_true, self.y_pred)) <= 2:
            indices = np.fromiter(self.tags, dtype=np.int64)
            positive_predicted = int(np.sum(self.y_pred[indices] == self.pos_label))
            rows += [("false positives", positive_predicted, positive_predicted / examined),
                     ("false negatives", examined - positive_predicted, 1 - positive_predicted / examined)]
        return ErrorTable(rows, examined)

    def ceiling(self, category):
        """The dev error left if every error of `category` were fixed: the dev error times the
        fraction of examined errors not in the category (exact when all errors were examined,
        an estimate from the sample otherwise)."""
        if category not in self.categories:
            raise ValueError(f"unknown category {category!r}; declared: {self.categories}")
        if self.dev_error is None:
            raise ValueError("ceiling needs the dev error: pass dev_error= or y_true and y_pred to ErrorAnalysis")
        fraction = self.table().as_dict()[category][1]
        return self.dev_error * (1 - fraction)


class MislabeledAnalysis:
    """The dev error split into `due_to_labels` and `other_causes` (both rates), with
    `fraction_mislabeled` of the examined errors, `worth_fixing` and a `verdict` sentence."""

    def __init__(self, dev_error, fraction, threshold):
        self.dev_error, self.fraction_mislabeled = dev_error, fraction
        self.due_to_labels = dev_error * fraction
        self.other_causes = dev_error - self.due_to_labels
        self.worth_fixing = fraction >= threshold
        share = f"incorrect labels explain {percent(self.due_to_labels)} of the {percent(dev_error)} dev error"
        if self.worth_fixing:
            self.verdict = (f"{share} ({percent(fraction)} of it): worth fixing; correct dev and test labels together "
                            "(same distribution), and look at examples the model got right as well as wrong")
        else:
            self.verdict = (f"{share} ({percent(fraction)} of it): not worth fixing yet; the other causes "
                            f"({percent(self.other_causes)}) matter more")

    def __repr__(self):
        return f"MislabeledAnalysis(due_to_labels={self.due_to_labels!r}, other_causes={self.other_causes!r})"

    def __str__(self):
        rows = [("overall dev error", percent(self.dev_error)),
                ("due to incorrect labels", percent(self.due_to_labels)),
                ("due to other causes", percent(self.other_causes))]
        return table(("", "error"), rows) + "\n" + self.verdict


def mislabeled_analysis(dev_error, n_examined, n_mislabeled, threshold=0.25):
    """Of n_examined misclassified dev examples, n_mislabeled had a wrong label: split dev_error
    into the part due to labels and the part due to everything else. Fixing labels is judged
    worth it when labels explain at least `threshold` of the error (a quarter by default: below
    that the other causes leave more to gain; when two models' dev errors differ by less than
    `due_to_labels`, the labels also make the comparison unreliable and deserve fixing).

    >>> result = mislabeled_analysis(0.10, n_examined=100, n_mislabeled=6)
    >>> round(result.due_to_labels, 4), round(result.other_causes, 4), result.worth_fixing
    (0.006, 0.094, False)
    """
    dev_error = error_rate(dev_error, "dev_error")
    n_examined = count(n_examined, "n_examined", minimum=1)
    n_mislabeled = count(n_mislabeled, "n_mislabeled")
    if n_mislabeled > n_examined:
        raise ValueError(f"n_mislabeled={n_mislabeled} exceeds n_examined={n_examined}")
    return MislabeledAnalysis(dev_error, n_mislabeled / n_examined, error_rate(threshold, "threshold"))

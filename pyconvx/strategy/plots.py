"""Figures for the strategy tools (the optional `plots` extra: pip install "pyconvx[plots]").

Each function returns a matplotlib Figure and, given `path`, also saves it as a PNG. Figures
are built without pyplot, so nothing depends on (or changes) a global backend or figure list.
"""
from ..callbacks import History
from ..label_metrics import checked_labels, confusion_matrix, label_pair
from .diagnosis import Diagnosis
from .error_analysis import ErrorAnalysis, ErrorTable

__all__ = ["plot_training_curves", "plot_confusion_matrix", "plot_error_analysis", "plot_diagnosis"]


def _figure(width, height):
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('plots need matplotlib: pip install "pyconvx[plots]"') from error
    return Figure(figsize=(width, height), layout="constrained")


def _finish(figure, path):
    if path is not None:
        figure.savefig(path, dpi=100, format="png")
    return figure


def plot_training_curves(history, path=None):
    """One panel per figure of a fit (loss, accuracy, ...), training and validation per epoch.

    history: the History fit() returns, or its `history` dict {name: [value per epoch]}.

    >>> figure = plot_training_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    >>> [axes.get_title() for axes in figure.axes]
    ['loss']
    """
    values = history.history if isinstance(history, History) else history
    if not isinstance(values, dict) or not values:
        raise ValueError(f"history must be a History or a non-empty dict of name -> values, got {history!r}")
    names = list(dict.fromkeys(name[4:] if name.startswith("val_") else name for name in values))
    figure = _figure(4 * len(names), 3)
    for axes, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names):
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            if key in values:
                axes.plot(range(1, len(values[key]) + 1), values[key], marker="o", label=label)
        axes.set(title=name, xlabel="epoch")
        axes.legend()
    return _finish(figure, path)


def plot_confusion_matrix(y_true, y_pred, labels=None, normalize=None, path=None):
    """The confusion matrix as an image with the count (or fraction) in each cell; rows are the
    true labels, columns the predicted ones (arguments as in metrics.confusion_matrix).

    >>> figure = plot_confusion_matrix([0, 1, 1], [0, 1, 0])
    >>> figure.axes[0].get_ylabel()
    'true label'
    """
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    labels = checked_labels(*label_pair(y_true, y_pred), labels)
    size = 1.5 + 0.5 * len(labels)
    figure = _figure(size + 1, size)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set(xticks=ticks, yticks=ticks, xticklabels=[str(v) for v in labels], yticklabels=[str(v) for v in labels],
             xlabel="predicted label", ylabel="true label")
    middle = matrix.max() / 2
    for (i, j), value in zip(((i, j) for i in ticks for j in ticks), matrix.ravel()):
        axes.text(j, i, f"{value:.2f}" if normalize else str(value), ha="center", va="center",
                  color="white" if value > middle else "black")
    return _finish(figure, path)


def plot_error_analysis(analysis, path=None):
    """The share of examined errors per category as horizontal bars (with false positives and
    false negatives when the table has them). analysis: an ErrorAnalysis or its table()."""
    table = analysis.table() if isinstance(analysis, ErrorAnalysis) else analysis
    if not isinstance(table, ErrorTable):
        raise ValueError(f"analysis must be an ErrorAnalysis or an ErrorTable, got {type(analysis).__name__}")
    names = [row[0] for row in table.rows][::-1]
    shares = [100 * row[2] for row in table.rows][::-1]
    figure = _figure(6, 1 + 0.4 * len(names))
    axes = figure.subplots()
    bars = axes.barh(names, shares, color="tab:orange")
    axes.bar_label(bars, labels=[f"{row[1]} ({100 * row[2]:.0f}%)" for row in table.rows][::-1], padding=3)
    axes.set(xlabel=f"% of the {table.examined} examined errors", xlim=(0, max(100, max(shares) * 1.2)))
    return _finish(figure, path)


def plot_diagnosis(report, path=None):
    """The error rates of a diagnose() report as bars (Bayes proxy, train, train-dev, dev, test:
    those given) with each gap between neighbours labelled above the later bar."""
    if not isinstance(report, Diagnosis):
        raise ValueError(f"report must be the Diagnosis that diagnose() returns, got {type(report).__name__}")
    rows = [row for row in report.rows() if row[1] is not None]
    values = [100 * row[1] for row in rows]
    figure = _figure(1.6 * len(rows) + 1, 3.5)
    axes = figure.subplots()
    colours = ["tab:gray" if row[0] == report.bayes_name else "tab:blue" for row in rows]
    bars = axes.bar([row[0] for row in rows], values, color=colours)
    labels = [f"{100 * error:.1f}%" + ("" if value is None else f"\n{gap} {100 * value:+.1f}%")
              for _, error, gap, value in rows]
    axes.bar_label(bars, labels=labels, padding=2, fontsize=8)
    axes.set(ylabel="error (%)", ylim=(0, max(values) * 1.4 + 0.5),
             title=f"focus: {report.focus or 'none'}")
    return _finish(figure, path)

"""Checks and text tables shared by the strategy tools."""
import numbers

import numpy as np


def error_rate(value, name):
    """value as a float in [0, 1]; ValueError naming `name` otherwise (a percentage such as 5 for
    5% is the usual mistake)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be an error rate in [0, 1], got {name}={value!r}")
    if not 0.0 <= float(value) <= 1.0:
        hint = f" (a percentage? pass {float(value) / 100:g})" if 1 < float(value) <= 100 else ""
        raise ValueError(f"{name} must be an error rate in [0, 1], got {name}={value!r}{hint}")
    return float(value)


def count(value, name, minimum=0):
    """value as an int >= minimum; ValueError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def percent(value):
    return "" if value is None else f"{100 * value:.1f}%"


def table(headers, rows, align=None):
    """A text table under one header rule; align is a letter per column, "l" or "r" (default: the
    first column left, the others right)."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    align = align or "l" + "r" * (len(headers) - 1)

    def line(row):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip()

    return "\n".join([line(cells[0]), "-" * (sum(widths) + 2 * (len(widths) - 1))] + [line(r) for r in cells[1:]])

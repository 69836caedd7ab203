"""The text table of Sequential.summary()."""


def _count(n):
    return f"{n:,}"


def format_summary(model):
    """Layer name and type, output shape, parameters, and a convolution's dense equivalent."""
    header = ("Layer (type)", "Output shape", "Params", "Dense equivalent")
    rows = []
    for layer in model.layers:
        dense_equivalent = getattr(layer, "dense_equivalent_params", None)
        rows.append((f"{layer.name} ({type(layer).__name__})", str((None,) + layer.output_shape),
                     _count(layer.count_params()), _count(dense_equivalent()) if dense_equivalent else ""))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(4)]

    def line(row):
        return "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1])] +
                         [cell.rjust(width) for cell, width in zip(row[2:], widths[2:])]).rstrip()

    rule = "-" * len(line(header))
    total = model.count_params()
    trainable = sum(layer.count_trainable_params() for layer in model.layers)
    lines = [f'Model: "{model.name}"  input shape {(None,) + model.input_shape}', rule, line(header), rule]
    lines += [line(row) for row in rows]
    lines += [rule, f"Total params: {_count(total)}", f"Trainable params: {_count(trainable)}",
              f"Non-trainable params: {_count(total - trainable)}"]
    if any(row[3] for row in rows):
        lines.append("Dense equivalent: parameters of a fully connected layer with the same input and output sizes")
    return "\n".join(lines)

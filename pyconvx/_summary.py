"""The text table of Model.summary()."""


def _count(n):
    return f"{n:,}"


def _batched(shape):
    return str((None,) + tuple(shape))


def format_summary(model):
    """Layer name and type, output shape, parameters, a convolution's dense equivalent and, for a
    graph other than a chain, the tensors each layer is called on."""
    connections = model._connections()
    header = ("Layer (type)", "Output shape", "Params", "Dense equivalent") + (("Connected to",) if connections else ())
    rows = []
    for layer in model.layers:
        dense_equivalent = getattr(layer, "dense_equivalent_params", None)
        row = (f"{layer.name} ({type(layer).__name__})", _batched(layer.output_shape),
               _count(layer.count_params()), _count(dense_equivalent()) if dense_equivalent else "")
        rows.append(row + ((", ".join(connections[id(layer)]),) if connections else ()))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]

    def line(row):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:4], widths[2:4])]
        return "  ".join(cells + list(row[4:])).rstrip()

    rule = "-" * max(len(line(header)), max((len(line(row)) for row in rows), default=0))
    total = model.count_params()
    trainable = sum(layer.count_trainable_params() for layer in model.layers)
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    described = ", ".join(_batched(shape) for shape in shapes)
    lines = [f'Model: "{model.name}"  input shape{"s" if len(shapes) > 1 else ""} {described}', rule, line(header),
             rule]
    lines += [line(row) for row in rows]
    lines += [rule, f"Total params: {_count(total)}", f"Trainable params: {_count(trainable)}",
              f"Non-trainable params: {_count(total - trainable)}"]
    if any(row[3] for row in rows):
        lines.append("Dense equivalent: parameters of a fully connected layer with the same input and output sizes")
    return "\n".join(lines)

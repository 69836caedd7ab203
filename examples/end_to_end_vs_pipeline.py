"""End-to-end learning or a pipeline of subtasks? A small synthetic task where each answer wins.

The task: an image holds two glyphs side by side, each one of ten random 8x8 patterns, drawn with
noise and a jitter of a pixel; the answer is the sum of the two glyphs' numbers (0 to 18).

- End to end: one network from the 8x16 image to the sum, trained on labelled images. Only a
  few hundred such images exist (labelling a whole image is the expensive part).
- Pipeline: (1) a glyph classifier on 8x8 crops, trained on plentiful single-glyph data, run on
  each half; (2) a small network from the two glyphs' probabilities to the sum, trained on
  plentiful pairs of numbers (no image needed at all). Each stage has far more data than the
  whole task has.

With few end-to-end examples, the pipeline wins by a wide margin: the end-to-end network has to
discover, from a few hundred images, both what a glyph is and how 100 pairs map to 19 sums. Give
it as many labelled images as the subtasks have, and it closes most of the gap: end to end wins
back its simplicity when the data for the whole task is plentiful.

Run: python examples/end_to_end_vs_pipeline.py   (a few seconds on one core)
"""
import numpy as np

import pyconvx
from pyconvx import layers, optimizers

GLYPHS, SIZE = 10, 8


def glyph_templates(rng):
    return (rng.random((GLYPHS, SIZE, SIZE)) < 0.35).astype(np.float32)


def draw_glyphs(templates, labels, rng, noise=0.4):
    """Images (N, 1, 8, 8) of the glyphs `labels`: contrast varied, moved by up to a pixel, noisy."""
    images = templates[labels] * rng.uniform(0.7, 1.3, (len(labels), 1, 1)).astype(np.float32)
    shifts = rng.integers(-1, 2, (len(labels), 2))
    images = np.stack([np.roll(image, tuple(shift), axis=(0, 1)) for image, shift in zip(images, shifts)])
    images += noise * rng.standard_normal(images.shape).astype(np.float32)
    return images[:, None]


def draw_pairs(templates, count, rng):
    """(images (N, 1, 8, 16), left labels, right labels)."""
    left, right = rng.integers(0, GLYPHS, count), rng.integers(0, GLYPHS, count)
    images = np.concatenate([draw_glyphs(templates, left, rng), draw_glyphs(templates, right, rng)], axis=3)
    return images, left, right


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def trained(model, x, y, epochs, seed):
    model.compile(optimizers.Adam(0.003), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, seed=seed)
    return model


def end_to_end(images, sums, seed):
    model = pyconvx.Sequential([
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(128, activation="relu"), layers.Dense(64, activation="relu"), layers.Dense(2 * GLYPHS - 1),
    ], input_shape=(1, SIZE, 2 * SIZE), seed=seed)
    return trained(model, images, sums, epochs=max(10, 12000 // len(images)), seed=seed)


def pipeline(templates, glyph_examples, pair_examples, rng, seed):
    labels = rng.integers(0, GLYPHS, glyph_examples)
    reader = pyconvx.Sequential([
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(64, activation="relu"), layers.Dense(GLYPHS),
    ], input_shape=(1, SIZE, SIZE), seed=seed)
    trained(reader, draw_glyphs(templates, labels, rng), labels, epochs=10, seed=seed)
    # Stage 2 learns the sum from one-hot pairs of numbers; at test time it reads the reader's
    # probabilities, which are near one-hot when the reader is sure.
    left, right = rng.integers(0, GLYPHS, pair_examples), rng.integers(0, GLYPHS, pair_examples)
    eye = np.eye(GLYPHS, dtype=np.float32)
    adder = pyconvx.Sequential([layers.Dense(64, activation="relu"), layers.Dense(2 * GLYPHS - 1)],
                               input_shape=(2 * GLYPHS,), seed=seed)
    trained(adder, np.concatenate([eye[left], eye[right]], axis=1), left + right, epochs=20, seed=seed)

    def predict(images):
        halves = [softmax(reader.predict(images[..., :SIZE])), softmax(reader.predict(images[..., SIZE:]))]
        return adder.predict(np.concatenate(halves, axis=1)).argmax(axis=1)

    return predict, reader


def compare(few=300, plentiful=5000, test=2000, seed=0, end_to_end_counts=None):
    """Accuracies on `test` new images: the pipeline (each subtask trained on `plentiful`
    examples), and the end-to-end network trained on each count of labelled images in
    end_to_end_counts (default: `few`, then `plentiful`)."""
    rng = np.random.default_rng(seed)
    templates = glyph_templates(rng)
    x_test, left_test, right_test = draw_pairs(templates, test, rng)
    sums_test = left_test + right_test
    predict, reader = pipeline(templates, plentiful, plentiful, rng, seed)
    results = {"pipeline": float(np.mean(predict(x_test) == sums_test)),
               "its glyph reader (left glyph)": float(np.mean(reader.predict(x_test[..., :SIZE]).argmax(axis=1)
                                                              == left_test))}
    for count in end_to_end_counts or (few, plentiful):
        x, left, right = draw_pairs(templates, count, rng)
        model = end_to_end(x, left + right, seed)
        results[f"end to end, {count} images"] = float(np.mean(model.predict(x_test).argmax(axis=1) == sums_test))
    return results


def main():
    results = compare()
    width = max(len(name) for name in results)
    print("accuracy on 2000 new images (sum of two glyphs):")
    for name, accuracy in results.items():
        print(f"  {name:<{width}}  {accuracy:.3f}")
    return results


if __name__ == "__main__":
    main()

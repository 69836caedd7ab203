"""Recipes behind the `pyconvx` command: training a classic network on real, bundled data
(`pyconvx train`), the cost of augmenting on the fly, a picture of an augmentation
(`pyconvx augment-grid`), and transfer learning from some digits to the others.

>>> result = train_lenet5_digits(epochs=1, verbose=0)      # doctest: +SKIP
>>> sorted(result)                                          # doctest: +SKIP
['dev_accuracy', 'epochs', 'seconds', 'train_accuracy']
"""
import os
import tempfile
import time

import numpy as np
from tqdm import tqdm

from . import augment, datasets, optimizers, transfer

__all__ = ["train_lenet5_digits", "shifted_copies", "loader_overhead", "photo_transform", "augmentation_grid",
           "transfer_digits"]


def shifted_copies(x, shift, rng, fill=0.0):
    """Each image of x (N, C, H, W) moved by its own random offset of up to `shift` pixels along
    each axis (uniform in [-shift, shift]), the uncovered border filled with `fill`, as float32:
    augment.RandomCrop of the image's own size with padding `shift`.

    >>> shifted_copies(np.arange(9.0).reshape(1, 1, 3, 3), 0, np.random.default_rng(0))[0, 0, 0]
    array([0., 1., 2.], dtype=float32)
    """
    return augment.RandomCrop(x.shape[-2:], padding=shift, fill=fill)(x, rng=rng)


def train_lenet5_digits(epochs=20, batch_size=32, seed=0, verbose=1):
    """Trains LeNet-5 (pyconvx.models.lenet5) on the bundled handwritten digits upscaled to 32x32
    and returns {"train_accuracy", "dev_accuracy", "epochs", "seconds"}.

    The recipe: inputs standardised with the training set's mean and deviation (LeNet's tanh
    units work best on zero-mean inputs), every epoch a fresh copy of the training set with each
    digit shifted by up to 2 pixels (1,438 images are few for 61,706 parameters: without the
    shifts dev accuracy stalls near 96.5% while training accuracy reaches 100%), SGD with Nesterov
    momentum 0.9 at learning rate 0.02 (0.002 for the last third of the epochs), batches of 32.
    """
    from .models import lenet5

    (x_train, y_train), (x_dev, y_dev), background = _standardised_digits(seed)

    model = lenet5(num_classes=10, seed=seed)
    optimizer = optimizers.SGD(learning_rate=0.02, momentum=0.9, nesterov=True)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with tqdm(range(epochs), desc="LeNet-5 on digits", unit="epoch", disable=not verbose) as bar:
        for epoch in bar:
            # The last third at a tenth of the rate: the dev accuracy settles instead of swinging
            # by a point from epoch to epoch.
            optimizer.learning_rate = 0.02 if epoch < 2 * epochs // 3 else 0.002
            shifted = shifted_copies(x_train, 2, rng, fill=background)
            history = model.fit(shifted, y_train, batch_size=batch_size, epochs=1, validation_data=(x_dev, y_dev),
                                verbose=0, seed=seed * 1000 + epoch)
            bar.set_postfix({key: f"{values[-1]:.4f}" for key, values in history.history.items()})
    seconds = time.perf_counter() - start
    _, train_accuracy = model.evaluate(x_train, y_train, verbose=0)
    _, dev_accuracy = model.evaluate(x_dev, y_dev, verbose=0)
    return {"train_accuracy": float(train_accuracy), "dev_accuracy": float(dev_accuracy), "epochs": epochs,
            "seconds": seconds}



def _standardised_digits(seed):
    """The digits at 32x32 standardised with the training set's mean and deviation (LeNet's tanh
    units work best on zero-mean inputs), and the value of a blank pixel after that."""
    (x_train, y_train), (x_dev, y_dev) = datasets.load_digits(image_size=32, seed=seed)
    mean, std = float(x_train.mean()), float(x_train.std())
    return (((x_train - mean) / std, y_train), ((x_dev - mean) / std, y_dev), -mean / std)


def _train_shifted(model, x, y, epochs, learning_rate, batch_size, background, seed):
    """SGD with Nesterov momentum 0.9 over `epochs` fresh copies of x, each digit shifted by up
    to 2 pixels, as in train_lenet5_digits."""
    model.compile(optimizer=optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        model.fit(shifted_copies(x, 2, rng, fill=background), y, batch_size=batch_size, epochs=1, verbose=0,
                  seed=seed * 1000 + epoch)
    return model


_TRANSFER_WAYS = ("scratch", "flips_shrink_perturb", "fine_tune_all", "head_then_all", "frozen_to_s4", "head_only")


def _with_mirror_images(x, y, classes):
    """x and its mirror images, left-right, upside down and both (a half turn), each a new set of
    `classes` classes: labels y, y + classes, y + 2 * classes, y + 3 * classes."""
    mirrored = [x, x[..., ::-1], x[..., ::-1, :], x[..., ::-1, ::-1]]
    return (np.ascontiguousarray(np.concatenate(mirrored)),
            np.concatenate([y + index * classes for index in range(len(mirrored))]))


def transfer_digits(shots=(1, 3, 10), draws=10, pretrain_epochs=10, epochs=160, evaluate_on="test", ways=None,
                    timing_epochs=5, seed=0, verbose=1):
    """Transfer learning on real data: LeNet-5 pretrained on the digits 0-4, then taught the
    digits 5-9 from a few examples of each, against the same network trained from scratch on
    those examples. Returns a dict of the figures.

    The pretraining: the 0-4 training digits (about 720), `pretrain_epochs` epochs of shifted
    copies with SGD and Nesterov momentum at 0.02 (train_lenet5_digits' recipe without its last
    third at a lower rate); its weights go through a weights file, as pretrained weights do.
    Then, for each number of examples per class in `shots` and each of `draws` random draws of
    that many training digits per class among 5-9, every way in `ways` (all six by default)
    learns the five new classes from them with the same budget and augmentation (shifted copies
    every epoch, SGD with Nesterov momentum at learning rate 0.01, `epochs` epochs, batches of 16):

    - "scratch": a fresh LeNet-5;
    - "flips_shrink_perturb", the transfer way this recipe recommends: pretrained on the 0-4
      digits and their mirror images (left-right, upside down, both) as 20 classes, with the same
      recipe (a mirrored 2 is not a 2, so the network has to tell apart four times as many shapes,
      and its features stay useful for shapes it has not seen); then the weights halfway between
      that network's and the fresh network's of "scratch" (transfer.shrink_perturb with shrink
      0.5; the new head is the scratch network's), and everything trains;
    - "fine_tune_all": pretrained start (the 0-4 network), everything trains;
    - "head_then_all": the first half of the epochs the new head alone, the rest everything at a
      tenth of the rate;
    - "frozen_to_s4": the convolutions up to s4 frozen;
    - "head_only": all but the new output layer frozen.

    A draw's networks share its examples and the seed of their new layers, so that the
    differences are paired. 160 epochs is where scratch stops improving on the dev split.

    evaluate_on="test" scores them on the held-out 5-9 digits of the bundled test split, drawing
    the examples among all 5-9 training digits; evaluate_on="dev" keeps the test split out of it
    (for choosing a protocol): it scores on a dev set of 30% of the 5-9 training digits and draws
    the examples among the other 70%.

    result["accuracy"][k][way] lists the accuracies of the draws with k examples per class,
    result["mean"][k][way] and result["std"][k][way] their mean and standard deviation,
    result["gain"][k] the mean over the draws of flips_shrink_perturb minus scratch (paired) and
    result["wins"][k] in how many draws flips_shrink_perturb beat scratch; "source_accuracy" is
    the 0-4 network's on held-out 0-4 digits and "flips_source_accuracy" the 20-class network's
    on them and their mirror images, "pool" the number of 5-9 training digits the examples are
    drawn from and "scored" the number of digits scored.

    Then, if `timing_epochs`, the cost of training the head: on all 5-9 training digits, an epoch
    of fit on the images through the frozen trunk ("frozen_trunk_epoch_seconds") against an
    epoch of fit of the same head on features extracted once to disk ("cached_epoch_seconds",
    after "extract_seconds" to write them), alternating for `timing_epochs` epochs after a
    warm-up, medians; "speedup" is their ratio.

    >>> result = transfer_digits(shots=(10,), verbose=0)                           # doctest: +SKIP
    >>> result["gain"][10] > 0, result["speedup"] > 1                               # doctest: +SKIP
    (True, True)
    """
    from .models import lenet5

    shots = (shots,) if np.isscalar(shots) else tuple(int(k) for k in shots)
    ways = _TRANSFER_WAYS if ways is None else tuple(ways)
    unknown = sorted(set(ways) - set(_TRANSFER_WAYS))
    if unknown or "scratch" not in ways or "flips_shrink_perturb" not in ways:
        raise ValueError(f"transfer_digits: ways must include 'scratch' and 'flips_shrink_perturb' and be among "
                         f"{_TRANSFER_WAYS}, got {ways!r}")
    if evaluate_on not in ("test", "dev"):
        raise ValueError(f"transfer_digits: evaluate_on must be 'test' or 'dev', got {evaluate_on!r}")
    (x_train, y_train), (x_test, y_test), background = _standardised_digits(seed)
    source, target_pool = y_train < 5, np.flatnonzero(y_train >= 5)
    x_source_test, y_source_test = x_test[y_test < 5], y_test[y_test < 5]
    if evaluate_on == "test":
        x_score, y_score = x_test[y_test >= 5], y_test[y_test >= 5] - 5
    else:
        shuffled = np.random.default_rng(seed + 1).permutation(target_pool)
        dev, target_pool = np.sort(shuffled[:len(shuffled) * 3 // 10]), np.sort(shuffled[len(shuffled) * 3 // 10:])
        x_score, y_score = x_train[dev], y_train[dev] - 5
    log = print if verbose else (lambda *args: None)

    pretrained = _train_shifted(lenet5(num_classes=5, seed=seed), x_train[source], y_train[source],
                                pretrain_epochs, 0.02, 32, background, seed)
    flips = _train_shifted(lenet5(num_classes=20, seed=seed), *_with_mirror_images(x_train[source], y_train[source], 5),
                           pretrain_epochs, 0.02, 32, background, seed)
    result = {"shots": shots, "draws": draws, "evaluate_on": evaluate_on, "ways": ways,
              "pool": len(target_pool), "scored": len(y_score),
              "source_accuracy": float(pretrained.evaluate(x_source_test, y_source_test)[1]),
              "flips_source_accuracy": float(flips.evaluate(*_with_mirror_images(x_source_test, y_source_test, 5))[1]),
              "accuracy": {}, "mean": {}, "std": {}, "gain": {}, "wins": {}}
    log(f"pretrained on digits 0-4: {result['source_accuracy']:.3f} on held-out 0-4 digits; on them and their "
        f"mirror images as 20 classes: {result['flips_source_accuracy']:.3f}")
    log(f"scored on {len(y_score)} {evaluate_on} digits of 5-9, {draws} draws of training digits among "
        f"{len(target_pool)}")
    with tempfile.TemporaryDirectory() as directory:
        weights = {"digits": os.path.join(directory, "lenet5_digits_0-4.npz"),
                   "flips": os.path.join(directory, "lenet5_digits_0-4_and_mirror_images.npz")}
        pretrained.save_weights(weights["digits"])
        flips.save_weights(weights["flips"])
        for k in shots:
            rng = np.random.default_rng(seed * 1000 + k)
            accuracy = {name: [] for name in ways}
            for draw in range(draws):
                chosen = np.concatenate([rng.choice(target_pool[y_train[target_pool] == label], k, replace=False)
                                         for label in range(5, 10)])
                for name in ways:
                    model = _few_shot_model(name, weights, x_train[chosen], y_train[chosen] - 5, epochs, background,
                                            seed + draw)
                    accuracy[name].append(float(model.evaluate(x_score, y_score)[1]))
            gains = np.subtract(accuracy["flips_shrink_perturb"], accuracy["scratch"])
            result["accuracy"][k] = accuracy
            result["mean"][k] = {name: float(np.mean(values)) for name, values in accuracy.items()}
            result["std"][k] = {name: float(np.std(values)) for name, values in accuracy.items()}
            result["gain"][k], result["wins"][k] = float(gains.mean()), int((gains > 0).sum())
            log(f"{k:>2} per class: "
                + ", ".join(f"{name} {result['mean'][k][name]:.3f} ± {result['std'][k][name]:.3f}" for name in ways)
                + f"; flips_shrink_perturb - scratch {result['gain'][k]:+.3f} ± {gains.std():.3f}, better in "
                  f"{result['wins'][k]}/{draws}")
        if timing_epochs:
            result.update(_head_epoch_seconds(weights["digits"], x_train[target_pool], y_train[target_pool] - 5,
                                              timing_epochs, directory, seed))
            log(f"head epoch: {result['frozen_trunk_epoch_seconds'] * 1e3:.1f} ms through the frozen trunk, "
                f"{result['cached_epoch_seconds'] * 1e3:.1f} ms on cached features ({result['speedup']:.1f}x; "
                f"extracting them once: {result['extract_seconds'] * 1e3:.1f} ms)")
    return result


def _few_shot_model(way, weights, x, y, epochs, background, seed):
    """One of transfer_digits' ways, trained on (x, y) for `epochs` epochs of shifted copies;
    weights maps "digits" and "flips" to the two pretrained networks' weights files."""
    from .models import lenet5

    if way == "scratch":
        return _train_shifted(lenet5(num_classes=5, seed=seed), x, y, epochs, 0.01, 16, background, seed)
    if way == "flips_shrink_perturb":
        # Halfway back to the scratch network's start: the new head is that network's (same seed).
        model = transfer.from_pretrained(lenet5, weights["flips"], num_classes=5, seed=seed)
        transfer.shrink_perturb(model, lenet5(num_classes=5, seed=seed), shrink=0.5, skip=["output"])
        return _train_shifted(model, x, y, epochs, 0.01, 16, background, seed)
    freeze_up_to = {"fine_tune_all": None, "head_then_all": "f6", "frozen_to_s4": "s4", "head_only": "f6"}[way]
    model = transfer.from_pretrained(lenet5, weights["digits"], num_classes=5, freeze_up_to=freeze_up_to, seed=seed)
    if way != "head_then_all":
        return _train_shifted(model, x, y, epochs, 0.01, 16, background, seed)
    # The usual two stages: a random head's gradients would first scramble the pretrained layers,
    # so it learns alone, then everything moves a little.
    _train_shifted(model, x, y, epochs // 2, 0.01, 16, background, seed)
    model.unfreeze()
    return _train_shifted(model, x, y, epochs - epochs // 2, 0.001, 16, background, seed + 1)


def _head_epoch_seconds(weights, x, y, epochs, directory, seed):
    """Median seconds of an epoch of head training through the frozen trunk and on cached features."""
    from .models import lenet5

    frozen = transfer.from_pretrained(lenet5, weights, num_classes=5, freeze_up_to="f6", seed=seed)
    cached = transfer.from_pretrained(lenet5, weights, num_classes=5, freeze_up_to="f6", seed=seed)
    start = time.perf_counter()
    features = transfer.extract_features(cached, x, "f6", os.path.join(directory, "f6.npy"))
    extract_seconds = time.perf_counter() - start
    _, head = transfer.split(cached, "f6")
    for model in (frozen, head):
        model.compile(optimizer=optimizers.SGD(learning_rate=0.01, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
    runs = [lambda epoch: frozen.fit(x, y, batch_size=32, verbose=0, seed=epoch),
            lambda epoch: head.fit(features, y, batch_size=32, verbose=0, seed=epoch)]
    seconds = [[], []]
    for epoch in range(epochs + 1):
        for run, times in zip(runs, seconds):
            start = time.perf_counter()
            run(epoch)
            if epoch:  # the first is a warm-up
                times.append(time.perf_counter() - start)
    frozen_seconds, cached_seconds = (float(np.median(times)) for times in seconds)
    return {"frozen_trunk_epoch_seconds": frozen_seconds, "cached_epoch_seconds": cached_seconds,
            "speedup": frozen_seconds / cached_seconds, "extract_seconds": extract_seconds}


def loader_overhead(epochs=3, num_workers=2, batch_size=32, seed=0):
    """What augmenting on the fly costs: seconds per epoch of LeNet-5 on the bundled digits (32x32)
    trained by fit on the arrays, and by fit on a data.DataLoader over the same arrays that shifts
    (RandomCrop(32, padding=2)) and rotates (RandomRotation(10)) every image in `num_workers`
    threads. After one warm-up epoch each, the two alternate for `epochs` epochs, so that a change
    in the machine's load hits both; returns the medians {"plain_seconds", "augmented_seconds"}
    and their "ratio" (augmented / plain).

    >>> loader_overhead(epochs=3)["ratio"]     # doctest: +SKIP
    1.1
    """
    from .data import DataLoader
    from .models import lenet5

    (x_train, y_train), _ = datasets.load_digits(image_size=32, seed=seed)
    transform = augment.Compose([augment.RandomCrop(32, padding=2), augment.RandomRotation(10)])
    loader = DataLoader(x_train, y_train, batch_size, transform=transform, num_workers=num_workers, seed=seed)
    models = [lenet5(num_classes=10, seed=seed) for _ in range(2)]
    for model in models:
        model.compile(optimizer=optimizers.SGD(learning_rate=0.02, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
    runs = [lambda: models[0].fit(x_train, y_train, batch_size=batch_size, verbose=0, seed=seed),
            lambda: models[1].fit(loader, verbose=0, seed=seed)]
    seconds = [[], []]
    for epoch in range(epochs + 1):
        for run, times in zip(runs, seconds):
            start = time.perf_counter()
            run()
            if epoch:  # the first is a warm-up: workspaces, caches, thread pools
                times.append(time.perf_counter() - start)
    plain, augmented = (float(np.median(times)) for times in seconds)
    return {"plain_seconds": plain, "augmented_seconds": augmented, "ratio": augmented / plain}


def photo_transform(photos, size=(96, 144)):
    """The augmentation `pyconvx augment-grid` shows, for photographs (N, 3, H, W) in [0, 1]: a
    random window of 30-100% of the area resized to `size` (height, width), a mirror image half
    of the time, a rotation by up to 15 degrees half of the time, brightness, contrast and
    saturation jitter of up to 30%, and AlexNet's lighting noise fitted on `photos`.

    >>> photo_transform(np.random.default_rng(0).random((2, 3, 40, 60)), size=(20, 30))(
    ...     np.ones((1, 3, 40, 60)), rng=np.random.default_rng(0)).shape
    (1, 3, 20, 30)
    """
    return augment.Compose([
        augment.RandomResizedCrop(size, scale=(0.3, 1.0)),
        augment.RandomHorizontalFlip(),
        augment.RandomApply(augment.RandomRotation(15), p=0.5),
        augment.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
        augment.PCAColorAugmentation(std=0.1).fit(photos),
    ])


def augmentation_grid(path, copies=8, seed=0, height=96):
    """Writes a PNG (or JPEG, by extension) grid of the two bundled photographs
    (datasets.load_sample_images), each followed by `copies` versions through photo_transform at
    `height` pixels high (the photos' 3:2 width), drawn with `seed`. Returns the grid, (3, H, W).

    >>> augmentation_grid("grid.png", copies=4).shape     # doctest: +SKIP
    (3, 198, 732)
    """
    from .data import save_augmentation_grid

    photos = np.stack(datasets.load_sample_images())
    width = int(round(height * photos.shape[-1] / photos.shape[-2]))
    return save_augmentation_grid(photos, photo_transform(photos, (height, width)), path, copies=copies, seed=seed)

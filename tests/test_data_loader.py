"""pyconvx.data.DataLoader: reproducible order and augmentation whatever the worker count, every
sample once per epoch, worker errors surfacing, workers stopping, and model.fit on a loader."""
import gc
import threading
import time
import traceback

import numpy as np
import pytest

import pyconvx
from pyconvx import augment, layers
from pyconvx.data import DataLoader, augment_to_disk


def data(count=50, size=6):
    rng = np.random.default_rng(1)
    return rng.random((count, 1, size, size), dtype=np.float32), np.arange(count)


def epochs(loader, count=2):
    return [[(x.copy(), y.copy()) for x, y in loader] for _ in range(count)]


def wait_for_threads(baseline, seconds=5.0):
    deadline = time.monotonic() + seconds
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


AUGMENT = augment.Compose([augment.RandomCrop(6, padding=1), augment.RandomHorizontalFlip()])


def test_order_and_augmentation_are_the_same_for_any_worker_count():
    x, y = data()
    runs = [epochs(DataLoader(x, y, 8, transform=AUGMENT, num_workers=w, seed=3)) for w in (0, 1, 2, 3)]
    for run in runs[1:]:
        for epoch, reference in zip(run, runs[0]):
            assert len(epoch) == len(reference) == 7
            for (xb, yb), (xr, yr) in zip(epoch, reference):
                np.testing.assert_array_equal(yb, yr)
                np.testing.assert_array_equal(xb, xr)
    first, second = runs[0]
    assert not np.array_equal(first[0][1], second[0][1]), "each epoch has its own order"
    assert not np.array_equal(first[0][0], x[first[0][1]]), "the transform was applied"


def test_another_seed_gives_another_run_and_unseeded_loaders_differ():
    x, y = data()
    a = epochs(DataLoader(x, y, 8, num_workers=0, seed=3), 1)[0]
    b = epochs(DataLoader(x, y, 8, num_workers=0, seed=4), 1)[0]
    assert not np.array_equal(np.concatenate([yb for _, yb in a]), np.concatenate([yb for _, yb in b]))
    c, d = (np.concatenate([yb for _, yb in DataLoader(x, y, 50, num_workers=0)]) for _ in range(2))
    assert not np.array_equal(c, d)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("workers", [0, 2])
def test_every_sample_once_per_epoch(drop_last, workers):
    x, y = data(count=23)
    loader = DataLoader(x, y, 5, drop_last=drop_last, num_workers=workers, seed=0)
    assert len(loader) == (4 if drop_last else 5)
    for epoch in epochs(loader):
        sizes = [len(yb) for _, yb in epoch]
        assert sizes == ([5] * 4 if drop_last else [5, 5, 5, 5, 3])
        seen = np.concatenate([yb for _, yb in epoch])
        assert len(set(seen.tolist())) == len(seen)
        for xb, yb in epoch:  # the pairs stay together
            np.testing.assert_array_equal(xb, x[yb])


def test_shapes_dtypes_and_no_shuffle():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float64).reshape(2 * 1, 3, 4, 4)
    y = np.array([[0.5, 1.0], [2.0, 3.0]])
    (xb, yb), = list(DataLoader(x, y, 4, shuffle=False, num_workers=1))
    assert xb.dtype == np.float32 and xb.shape == (2, 3, 4, 4) and yb.shape == (2, 2)
    np.testing.assert_array_equal(yb, y)
    resized = DataLoader(x, y, 2, transform=augment.Resize(8), num_workers=2, seed=0)
    assert next(iter(resized))[0].shape == (2, 3, 8, 8)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size"), ({"num_workers": -1}, "num_workers"), ({"prefetch": 0}, "prefetch"),
    ({"transform": 3}, "transform"), ({"seed": -2}, "seed"), ({"seed": 1.5}, "seed"),
    ({"batch_size": 60, "drop_last": True}, "drop_last"),
])
def test_bad_arguments_name_the_parameter(kwargs, match):
    x, y = data()
    arguments = {"batch_size": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        DataLoader(x, y, **arguments)


def test_mismatched_or_empty_data_is_refused():
    x, y = data()
    with pytest.raises(ValueError, match="same number"):
        DataLoader(x, y[:-1], 8)
    with pytest.raises(ValueError, match="no samples"):
        DataLoader(x[:0], y[:0], 8)


def failing_transform(batch, rng):
    raise KeyError("broken transform")


@pytest.mark.parametrize("workers", [0, 2])
def test_a_worker_exception_surfaces_with_its_traceback(workers):
    baseline = threading.active_count()
    x, y = data()
    loader = DataLoader(x, y, 8, transform=failing_transform, num_workers=workers, seed=0)
    with pytest.raises(KeyError, match="broken transform") as info:
        for _ in loader:
            pass
    text = "".join(traceback.format_exception(info.type, info.value, info.tb))
    assert "failing_transform" in text and "raise KeyError" in text
    assert wait_for_threads(baseline) == baseline


def test_an_exception_in_a_later_batch_comes_after_the_earlier_batches():
    x, y = data()

    def fail_on_sample_zero(batch, rng):
        if np.any(batch[:, 0, 0, 0] == x[0, 0, 0, 0]):
            raise RuntimeError("sample 0")
        return batch

    received = []
    with pytest.raises(RuntimeError, match="sample 0"):
        for _, yb in DataLoader(x, y, 10, shuffle=False, transform=fail_on_sample_zero, num_workers=2):
            received.append(yb)
    assert received == []
    loader = DataLoader(x[::-1].copy(), y, 10, shuffle=False, transform=fail_on_sample_zero, num_workers=3)
    with pytest.raises(RuntimeError):
        for _, yb in loader:
            received.append(yb)
    assert len(received) == 4  # the last batch holds sample 0


def slow_transform(batch, rng):
    time.sleep(0.01)
    return batch


def test_a_worker_refills_its_queue_only_once_the_consumer_has_emptied_it():
    x, y = data(count=9)
    requested = []  # batches the consumer has asked for, counted before it asks
    made_after = []  # for each batch made, how many had been asked for when it was started

    def record(batch, rng):
        made_after.append(len(requested))
        return batch

    epoch = iter(DataLoader(x, y, 1, transform=record, num_workers=1, prefetch=3, seed=0))
    for k in range(9):
        # A training step, long enough for the worker to have filled its queue (however slow the
        # machine), and for a worker that refilled early to show it.
        deadline = time.monotonic() + 5.0
        while len(made_after) < min(9, 3 * (k // 3) + 3) and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.02)
        requested.append(True)
        next(epoch)
    # Batches 0-2 fill the queue; 3-5 start once batch 2 (the last queued) is asked for, 6-8 after 5.
    assert [made_after[k] >= 3 * (k // 3) for k in range(9)] == [True] * 9, made_after


@pytest.mark.parametrize("how", ["break", "close", "drop"])
def test_leaving_an_epoch_early_stops_the_workers(how):
    baseline = threading.active_count()
    x, y = data(count=400)
    loader = DataLoader(x, y, 4, transform=slow_transform, num_workers=3, prefetch=2, seed=0)
    epoch = iter(loader)
    next(epoch)
    assert threading.active_count() == baseline + 3
    if how == "break":
        for index, _ in enumerate(epoch):
            if index == 2:
                break
        del epoch
    elif how == "close":
        epoch.close()
        with pytest.raises(StopIteration):
            next(epoch)
    else:
        del epoch
        gc.collect()
    assert wait_for_threads(baseline, seconds=2.0) == baseline
    assert len(list(loader)) == 100, "the next epoch runs in full"


def test_a_loop_broken_out_of_leaves_no_thread():
    baseline = threading.active_count()
    x, y = data(count=400)
    loader = DataLoader(x, y, 4, transform=slow_transform, num_workers=2, seed=0)
    for _ in range(3):
        for index, _ in enumerate(loader):
            if index == 1:
                break
    assert wait_for_threads(baseline, seconds=2.0) == baseline


def classifier(seed=0):
    model = pyconvx.Sequential([layers.Flatten(), layers.Dense(2)], input_shape=(1, 4, 4), seed=seed)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def bright_or_dark(count=64):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, count)
    x = (rng.random((count, 1, 4, 4)) * 0.5 + 0.5 * y[:, None, None, None]).astype(np.float32)
    return x - 0.5, y


@pytest.mark.parametrize("workers", [0, 2])
def test_workers_run_the_kernels_on_their_own_thread_only(workers):
    seen = []

    def record(x, rng=None):
        seen.append(pyconvx.get_num_threads())
        return x

    before = pyconvx.get_num_threads()
    try:
        pyconvx.set_num_threads(2)
        list(DataLoader(np.zeros((8, 1, 2, 2)), np.arange(8), batch_size=2, transform=record, num_workers=workers))
        # Worker threads run under runtime.thread_limit(1); without workers the batches are made
        # by the caller, at the process-wide count.
        assert seen == [1 if workers else 2] * 4
        assert pyconvx.get_num_threads() == 2
    finally:
        pyconvx.set_num_threads(before)


def test_fit_on_a_loader_learns():
    x, y = bright_or_dark()
    loader = DataLoader(x, y, 8, transform=augment.RandomHorizontalFlip(), num_workers=2, seed=0)
    model = classifier()
    history = model.fit(loader, epochs=5, verbose=0, validation_data=(x, y), seed=0)
    losses = history.history["loss"]
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_fit_on_a_plain_loader_matches_fit_on_the_arrays():
    x, y = bright_or_dark()
    by_arrays = classifier().fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, seed=0)
    loader = DataLoader(x, y, 8, shuffle=False, num_workers=2)
    by_loader = classifier().fit(loader, epochs=3, verbose=0, seed=0)
    np.testing.assert_allclose(by_loader.history["loss"], by_arrays.history["loss"], rtol=1e-6)


def test_fit_refuses_y_with_a_loader_and_no_y_without_one():
    x, y = bright_or_dark()
    with pytest.raises(ValueError, match="y must be None"):
        classifier().fit(DataLoader(x, y, 8), y, verbose=0)
    with pytest.raises(ValueError, match="y is required"):
        classifier().fit(x, verbose=0)


def test_augment_to_disk_writes_reproducible_copies(tmp_path):
    x, y = data(count=10)
    paths = [tmp_path / f"{workers}.npz" for workers in (0, 2)]
    for workers, path in zip((0, 2), paths):
        augment_to_disk(x, y, AUGMENT, copies=3, path=path, seed=1, batch_size=4, num_workers=workers)
    first, second = (np.load(path) for path in paths)
    assert first["x"].shape == (30, 1, 6, 6) and first["x"].dtype == np.float32
    np.testing.assert_array_equal(first["y"], np.tile(y, 3))
    np.testing.assert_array_equal(first["x"], second["x"])
    assert not np.array_equal(first["x"][:10], first["x"][10:20]), "each copy has its own draw"
    with pytest.raises(ValueError, match="copies"):
        augment_to_disk(x, y, AUGMENT, copies=0, path=paths[0])


def test_fit_on_a_loader_shows_a_progress_bar_per_epoch(capsys):
    x, y = bright_or_dark()
    classifier().fit(DataLoader(x, y, 8, num_workers=1, seed=0), epochs=2, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err and "8/8" in err


def test_an_unseeded_loader_can_be_repeated_from_its_seed():
    x, y = data()
    first = DataLoader(x, y, 8, transform=AUGMENT, num_workers=2)
    again = DataLoader(x, y, 8, transform=AUGMENT, num_workers=0, seed=first.seed)
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)

"""DataLoader: shuffled, augmented mini-batches made by background threads while the network trains.

Every batch is a pure function of (seed, epoch, batch index): the epoch's order comes from a
generator seeded by (seed, epoch), each batch's augmentation from one seeded by (seed, epoch,
index). Which thread makes a batch therefore changes nothing, and batches are handed out in
order, so a seed reproduces a run whatever `num_workers` is. Threads are enough because NumPy
and pyconvx's kernels release the GIL while they work; a worker's kernels run on its own thread
only (runtime.thread_limit), so that they do not start thread teams against the training's.

>>> import numpy as np
>>> loader = DataLoader(np.zeros((10, 1, 4, 4)), np.arange(10), batch_size=4, seed=0, num_workers=0)
>>> len(loader), [len(y) for _, y in loader]
(3, [4, 4, 2])
"""
import numbers
import queue
import threading

import numpy as np

from .. import runtime

__all__ = ["DataLoader"]

# How long a blocked worker or consumer waits before looking at the stop flag again: short enough
# that an abandoned epoch ends promptly, long enough not to spin.
_POLL_SECONDS = 0.05


def _int_at_least(value, minimum, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"DataLoader: {name} must be an int >= {minimum}, got {name}={value!r}")
    return int(value)


class DataLoader:
    """Mini-batches (x_batch, y_batch) of (x, y), one epoch per iteration, optionally augmented.

    x is (N, C, H, W) (any (N, ...) array the transform accepts), y (N, ...) targets. Each
    iteration is a new epoch: a fresh order when `shuffle`, then ceil(N / batch_size) batches
    (floor with `drop_last`), x_batch float32 as `transform(x[indices], rng=generator)` returns it
    (x[indices] as float32 without a transform), y_batch = y[indices]. `num_workers` threads make
    batches ahead of the consumer, each keeping at most `prefetch` finished ones; num_workers=0
    makes them in the calling thread. `seed` (None: drawn once, at construction) fixes the orders
    and the augmentations of all epochs, the same for any num_workers; `loader.seed` holds the
    one in use, so that an unseeded run can be repeated.

    An exception raised while making a batch is raised again by the iteration, with the worker's
    traceback. Leaving the loop early (break, close(), or dropping the iterator) stops the
    workers.

    >>> from pyconvx import augment
    >>> x, y = np.random.default_rng(0).random((64, 1, 8, 8)), np.arange(64) % 10
    >>> loader = DataLoader(x, y, batch_size=16, transform=augment.RandomCrop(8, padding=1), seed=0)
    >>> first = [y_batch for _, y_batch in loader]
    >>> [b.shape for b in first], sorted(np.concatenate(first)) == sorted(y)
    ([(16,), (16,), (16,), (16,)], True)
    >>> x_batch, _ = next(iter(loader))
    >>> x_batch.shape, x_batch.dtype
    ((16, 1, 8, 8), dtype('float32'))
    """

    def __init__(self, x, y, batch_size, shuffle=True, transform=None, num_workers=2, prefetch=2, seed=None,
                 drop_last=False):
        self.x = np.asarray(x, dtype=np.float32)
        self.y = np.asarray(y)
        if self.x.ndim < 1 or self.y.ndim < 1 or len(self.x) != len(self.y):
            raise ValueError(f"DataLoader: x and y must hold the same number of samples, got shapes "
                             f"{self.x.shape} and {self.y.shape}")
        if len(self.x) == 0:
            raise ValueError("DataLoader: x and y hold no samples")
        if transform is not None and not callable(transform):
            raise ValueError(f"DataLoader: transform must be callable or None, got transform={transform!r}")
        self.batch_size = _int_at_least(batch_size, 1, "batch_size")
        self.num_workers = _int_at_least(num_workers, 0, "num_workers")
        self.prefetch = _int_at_least(prefetch, 1, "prefetch")
        self.shuffle, self.drop_last, self.transform = bool(shuffle), bool(drop_last), transform
        if self.drop_last and self.batch_size > len(self.x):
            raise ValueError(f"DataLoader: drop_last with batch_size={self.batch_size} larger than the "
                             f"{len(self.x)} samples would give no batch")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"DataLoader: seed must be an int >= 0 or None, got seed={seed!r}")
        # Drawn once, so that even an unseeded loader's batches do not depend on the thread making them.
        self.seed = int(np.random.SeedSequence(seed).entropy)
        self.epoch = 0  # the epoch the next iteration makes

    def __len__(self):
        count, size = len(self.x), self.batch_size
        return count // size if self.drop_last else -(-count // size)

    def order(self, epoch):
        """The sample indices of `epoch` in the order its batches take them."""
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0, epoch))).permutation(len(self.x))

    def batch(self, epoch, index, order=None):
        """Batch `index` of `epoch`, (x_batch, y_batch): what the iteration yields there."""
        order = self.order(epoch) if order is None else order
        chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
        x_batch = self.x[chosen]
        if self.transform is not None:
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1, epoch, index)))
            x_batch = np.asarray(self.transform(x_batch, rng=rng), dtype=np.float32)
        return x_batch, self.y[chosen]

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.num_workers == 0:
            return self._serial(epoch)
        return _Epoch(self, epoch)

    def _serial(self, epoch):
        order = self.order(epoch)
        for index in range(len(self)):
            yield self.batch(epoch, index, order)


class _Epoch:
    """The iterator of one epoch made by worker threads: worker w makes batches w, w + W, w + 2W,
    ... into its own bounded queue, and the consumer takes batch i from queue i mod W, which keeps
    the batches in order with no reordering buffer.

    A worker that has filled its queue sleeps until the consumer has emptied it, then fills it
    again: it wakes once per `prefetch` batches, not once per batch. Each wake-up takes a core
    from the training beside it (whose thread team then waits for that core at its next barrier);
    the consumer still holds a batch to train on while the queue refills."""

    def __init__(self, loader, epoch):
        self._count = len(loader)
        self._next = 0
        self._stop = threading.Event()
        workers = min(loader.num_workers, self._count)
        self._queues = [queue.Queue(maxsize=loader.prefetch) for _ in range(workers)]
        self._emptied = [threading.Event() for _ in range(workers)]
        order = loader.order(epoch)
        # The threads get the loader, queues and flag, never this object: dropping the iterator
        # must be able to finalise it (and so stop them) while they still run.
        self._threads = [threading.Thread(target=_work, args=(loader, epoch, order, w, workers, q, emptied, self._stop),
                                          name=f"pyconvx-DataLoader-{w}", daemon=True)
                         for w, (q, emptied) in enumerate(zip(self._queues, self._emptied))]
        for thread in self._threads:
            thread.start()

    def __iter__(self):
        return self

    def __len__(self):
        return self._count - self._next

    def __next__(self):
        if self._next >= self._count or self._stop.is_set():
            self.close()
            raise StopIteration
        worker = self._next % len(self._queues)
        source = self._queues[worker]
        while True:
            try:
                failed, value = source.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                if self._stop.is_set():
                    raise StopIteration from None
        if source.empty():
            self._emptied[worker].set()
        self._next += 1
        if failed:
            self.close()
            raise value  # the exception object keeps the worker's frames in its __traceback__
        return value

    def close(self):
        """Stops the workers and waits for them; a batch being made is finished first."""
        self._stop.set()
        for thread in getattr(self, "_threads", []):
            if thread is not threading.current_thread():
                thread.join()

    def __del__(self):
        self.close()


def _work(loader, epoch, order, first, step, out, emptied, stop):
    # Kernels a transform calls (the warps' sampler) run on this thread alone: the training beside
    # it keeps the cores' other threads.
    with runtime.thread_limit(1):
        _make_batches(loader, epoch, order, first, step, out, emptied, stop)


def _make_batches(loader, epoch, order, first, step, out, emptied, stop):
    for index in range(first, len(loader), step):
        if out.full():  # wait until the consumer has taken every batch (it then sets `emptied`)
            emptied.clear()
            while not out.empty() and not stop.is_set():
                emptied.wait(_POLL_SECONDS)
        if stop.is_set():
            return
        try:
            item = (False, loader.batch(epoch, index, order))
        except BaseException as exc:  # handed to the consumer, which raises it
            if hasattr(exc, "add_note"):  # Python 3.11+: say where it happened
                exc.add_note(f"(raised by a DataLoader worker making batch {index} of epoch {epoch})")
            item = (True, exc)
        while not stop.is_set():
            try:
                out.put(item, timeout=_POLL_SECONDS)
                break
            except queue.Full:
                pass
        if item[0]:
            return

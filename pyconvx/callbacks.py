"""Callbacks that fit() calls at the start and end of training and of each epoch.

>>> history = History()
>>> history.on_epoch_end(0, {"loss": 0.5})
>>> history.history
{'loss': [0.5]}
"""
import inspect
import math
import warnings

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler"]


class Callback:
    """Base class. `model` is set by fit(); `logs` is a dict of the epoch's figures ("loss",
    "accuracy", "val_loss", ...). Setting model.stop_training = True ends fit after the epoch."""

    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass


class History(Callback):
    """What fit() returns: `history` maps each figure's name to its list of per-epoch values and
    `epoch` lists the epochs run (from 0)."""

    def __init__(self):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _improvement_test(monitor, mode, min_delta, owner):
    """A function (value, best) -> bool for "value improves on best by more than min_delta"."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got mode={mode!r}")
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    if mode == "max":
        return lambda value, best: value > best + min_delta, -math.inf
    return lambda value, best: value < best - min_delta, math.inf


def _monitored(logs, monitor, owner):
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{owner}: '{monitor}' is not among the epoch's figures {sorted(logs or {})}; "
                      f"pass validation_data to fit() to monitor a val_ figure", RuntimeWarning, stacklevel=3)
    return value


class EarlyStopping(Callback):
    """Stops training once `monitor` has gone `patience` epochs in a row without improving by
    more than min_delta (patience=0: at the first epoch without improvement). mode "auto"
    maximises figures whose name contains "acc" and minimises the others.
    With restore_best_weights the model ends training with the weights of its best epoch.

    >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto", restore_best_weights=False):
        self.monitor, self.min_delta, self.patience = monitor, abs(float(min_delta)), int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self._improves, self._initial = _improvement_test(monitor, mode, self.min_delta, "EarlyStopping")
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.best_weights = self._initial, None, None
        self.wait, self.stopped_epoch = 0, None

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if value is None:
            return
        if self._improves(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model's weights (save_weights, .npz) after each epoch, or with save_best_only
    only when `monitor` improves. filepath may hold fields filled from the epoch (counted from 1)
    and its figures: "weights-{epoch:02d}-{val_loss:.3f}.npz".

    >>> checkpoint = ModelCheckpoint("best.npz", monitor="val_accuracy", save_best_only=True)
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto"):
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, bool(save_best_only)
        self._improves, self._initial = _improvement_test(monitor, mode, 0.0, "ModelCheckpoint")
        self.best = self._initial


    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if value is None or not self._improves(value, self.best):
                return
            self.best = value
        self.model.save_weights(self.filepath.format(epoch=epoch + 1, **logs))


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch to schedule(epoch, lr) (or
    schedule(epoch) for a one-argument function); epochs count from 0. The rate used is logged
    as "learning_rate".

    >>> halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr)
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got {schedule!r}")
        self.schedule = schedule
        try:
            self._takes_lr = len(inspect.signature(schedule).parameters) >= 2
        except (TypeError, ValueError):  # builtins without a signature
            self._takes_lr = True

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        lr = self.schedule(epoch, optimizer.learning_rate) if self._takes_lr else self.schedule(epoch)
        lr = float(lr)
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: schedule returned learning_rate={lr!r} at epoch {epoch}")
        optimizer.learning_rate = lr

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate

"""Ctrl-C during fit is raised at a batch's end, never inside a save (see
keras_vae/run/interrupt.py); the process-level behaviour is in test_crash_recovery.py."""

from __future__ import annotations

import os
import signal

import keras
import numpy as np
import pytest

from keras_vae.run.interrupt import CtrlCAtBatchEnd


@pytest.fixture(autouse=True)
def python_s_sigint_handler():
    """Python's own SIGINT handler for each test: a pytest started in the background by a
    non-interactive shell inherits SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_the_first_ctrl_c_waits_for_the_batch_end_and_the_second_raises_at_once():
    with CtrlCAtBatchEnd() as stop:
        _ctrl_c()  # would raise KeyboardInterrupt here with Python's own handler
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.on_train_batch_end(0)
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()


def test_python_s_handler_is_back_after_the_with_block():
    before = signal.getsignal(signal.SIGINT)
    with CtrlCAtBatchEnd():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_an_ignored_sigint_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with CtrlCAtBatchEnd() as stop:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        _ctrl_c()
        stop.on_train_batch_end(0)  # nothing requested: no exception


class _CtrlCAtSave(keras.callbacks.Callback):
    """Presses Ctrl-C at the start of the first epoch's end, where the backup and the
    checkpoint are written."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            _ctrl_c()
        self.ended = epoch


def test_fit_finishes_the_epoch_end_then_stops_at_the_next_batch():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    at_save, batches = _CtrlCAtSave(), []
    counter = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batches.append(batch))
    with pytest.raises(KeyboardInterrupt), CtrlCAtBatchEnd() as stop:
        model.fit(np.zeros((8, 2)), np.zeros((8, 1)), batch_size=4, epochs=3, verbose=0,
                  callbacks=[stop, at_save, counter])
    assert at_save.ended == 0  # the epoch-end callbacks after the signal all ran
    assert batches == [0, 1]  # and no batch of the second epoch did

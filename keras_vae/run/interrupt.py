"""Ctrl-C during `fit`, taken at a batch's end instead of wherever Python happens to be.

Python's own SIGINT handler raises KeyboardInterrupt at whatever bytecode runs when the
signal arrives — possibly inside h5py writing the backup or the best checkpoint, or inside
Keras's bookkeeping around them. HDF5 is not written to survive that: an interrupted
training process occasionally ended in a segmentation fault instead of its one line and
exit code 130. While `fit` runs, the first Ctrl-C is remembered and raised at the end of
the batch in flight (or at the next epoch's start), where nothing is half written; a second
Ctrl-C raises at once, for someone who will not wait for a slow batch.
"""

from __future__ import annotations

import signal
import threading

import keras


class CtrlCAtBatchEnd(keras.callbacks.Callback):
    """A callback and a context manager: `with CtrlCAtBatchEnd() as stop: model.fit(...,
    callbacks=[stop, ...])`. Outside the `with`, or off the main thread (where Python
    cannot install signal handlers), or where SIGINT was ignored, it changes nothing."""

    def __init__(self):
        super().__init__()
        self.requested = False
        self._installed = False
        self._previous = None

    def __enter__(self) -> CtrlCAtBatchEnd:
        self.requested = False
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            # None: a handler set outside Python, which cannot be put back; the default.
            previous = signal.SIG_DFL if self._previous is None else self._previous
            signal.signal(signal.SIGINT, previous)
            self._installed = False

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _raise_if_requested(self, *args, **kwargs) -> None:
        if self.requested:
            raise KeyboardInterrupt

    on_train_batch_end = _raise_if_requested
    on_test_batch_end = _raise_if_requested
    on_epoch_begin = _raise_if_requested

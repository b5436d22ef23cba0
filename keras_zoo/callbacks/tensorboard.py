"""Keras' TensorBoard writer with per-epoch summaries only, which keeps asynchronous callback dispatch."""

from __future__ import annotations

import keras


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """``keras.callbacks.TensorBoard`` without a batch-end hook: epoch summaries, no profiling.

    Keras' TensorBoard defines ``on_train_batch_end``, which on its own turns off Keras' asynchronous
    callback dispatch (see :mod:`keras_zoo.callbacks.stride`), although with ``update_freq="epoch"`` and no
    profiling the hook writes nothing: its batch summaries are not recorded and the train graph it would
    write after the first batch needs a train function that is a ``tf.function`` (Keras 3's is a Python
    function around one). This subclass restores the base class's no-op batch-end hook.

    Args:
        log_dir: folder of the event files.
        **kwargs: other ``keras.callbacks.TensorBoard`` arguments, except ``update_freq`` and
            ``profile_batch`` (which need the batch hooks).
    """

    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end  # the default, marked as such

    def __init__(self, log_dir: str, **kwargs):
        for name in ("update_freq", "profile_batch"):
            if name in kwargs:
                raise ValueError(
                    f"EpochTensorBoard writes per epoch only; {name}={kwargs[name]!r} not accepted"
                )
        super().__init__(log_dir, update_freq="epoch", profile_batch=0, **kwargs)

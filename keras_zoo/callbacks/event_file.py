"""``EventFile``: a TensorBoard event file written with the tensorboard package alone, without TensorFlow."""

from __future__ import annotations

import itertools
import os
import socket
import time

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

_FILE_NUMBERS = itertools.count()


class EventFile:
    """A new TensorBoard event file in ``folder`` (created if missing): framed ``Event`` records.

    The name follows TensorFlow's (``events.out.tfevents.<time>.<host>.<pid>.<n>.v2``), and the file is
    created exclusively: an existing file is never written over.
    """

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}."
            f"{next(_FILE_NUMBERS)}.v2"
        )
        self.path = os.path.join(folder, name)
        self._records = RecordWriter(open(self.path, "xb"))
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())

    def tensor(self, tag: str, value, step: int, metadata: summary_pb2.SummaryMetadata) -> None:
        """Writes ``value`` (a number or a string) as a scalar tensor summary at ``step``."""
        summary = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(
                    tag=tag, tensor=tensor_util.make_tensor_proto(value), metadata=metadata
                )
            ]
        )
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Writes ``value`` as a float32 scalar of TensorBoard's scalars plugin, as ``tf.summary.scalar``."""
        self.tensor(tag, np.float32(value), step, scalar_metadata.create_summary_metadata(None, ""))

    def keras_model(self, tag: str, config_json: str, step: int) -> None:
        """Writes a Keras model configuration (``model.to_json()``) for TensorBoard's conceptual graph, as
        Keras' TensorBoard callback does."""
        plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1")
        self.tensor(tag, config_json, step, summary_pb2.SummaryMetadata(plugin_data=plugin))

    def flush(self) -> None:
        self._records.flush()

    def close(self) -> None:
        self._records.close()

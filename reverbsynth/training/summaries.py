"""TensorBoard event files by tensorboardX's summaries and its synchronous event writer
(protobuf alone: the same under either backend, and JAX runs never import TensorFlow).

Not tensorboardX's SummaryWriter: it hands events to a background thread, and its flush
does not wait for that thread, so a summary written just before a run ends (or before a
test reads the file) may not be there yet."""

import os
import time
import uuid

import numpy as np
from tensorboardX import summary
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event


class Writer:
  """Scalars, images and audio in an event file of `logdir` (one per Writer), on disk as
  soon as each call returns."""

  def __init__(self, logdir):
    os.makedirs(logdir, exist_ok=True)
    self.events = EventsWriter(os.path.join(str(logdir), "events"),
                               f".{os.getpid()}.{uuid.uuid4().hex[:8]}")

  def _write(self, step: int, summaries) -> None:
    for value in summaries:
      self.events.write_event(Event(wall_time=time.time(), step=step, summary=value))
    self.events.flush()

  def scalars(self, step: int, values: dict) -> None:
    """{tag: number} at `step`."""
    self._write(step, [summary.scalar(tag, float(value)) for tag, value in values.items()])

  def samples(self, step: int, generated, real, audio: np.ndarray, sample_rate: int) -> None:
    """The stage's sample grid (uint8 [H, W, 1]), real spectra images ([N, H, W, 1] in
    [0, 1]: the first) and the grid's audio [S]."""
    self._write(step, [
        summary.image("spectra/generated", np.asarray(generated), dataformats="HWC"),
        summary.image("spectra/real", np.asarray(real)[0], dataformats="HWC"),
        summary.audio("audio/generated", np.asarray(audio, np.float32),
                      sample_rate=sample_rate)])

"""TensorBoard event files through tensorboardX (protobuf alone: the same under either
backend, and JAX runs never import TensorFlow)."""

import numpy as np
import tensorboardX


class Writer:
  """Scalars, images and audio in the event files of `logdir`, flushed as written (a run
  stopped at any moment keeps every summary written before)."""

  def __init__(self, logdir):
    self.events = tensorboardX.SummaryWriter(str(logdir), flush_secs=1)

  def scalars(self, step: int, values: dict) -> None:
    """{tag: number} at `step`."""
    for tag, value in values.items():
      self.events.add_scalar(tag, float(value), step)
    self.events.flush()

  def samples(self, step: int, generated, real, audio: np.ndarray, sample_rate: int) -> None:
    """The stage's sample grid (uint8 [H, W, 1]), real spectra images ([N, H, W, 1] in
    [0, 1]: the first) and the grid's audio [S]."""
    self.events.add_image("spectra/generated", np.asarray(generated), step, dataformats="HWC")
    self.events.add_image("spectra/real", np.asarray(real)[0], step, dataformats="HWC")
    self.events.add_audio("audio/generated", np.asarray(audio, np.float32), step,
                          sample_rate=sample_rate)
    self.events.flush()

"""TensorBoard event files, written without TensorFlow (the same under either backend).

An event file is TFRecord-framed Event protos: {1: wall_time double, 2: step int64,
3: file_version, 5: Summary}; Summary = {1: repeated Value}; Value = {1: tag,
2: simple_value float, 4: Image {1: height, 2: width, 3: colorspace, 4: PNG},
6: Audio {1: sample_rate float, 2: channels, 3: frames, 4: WAV, 5: content type}}.
"""

import io
import os
import socket
import struct
import time

import numpy as np
import soundfile as sf

from reverbsynth.data import tfrecord
from reverbsynth.data.example_proto import field, varint
from reverbsynth.synthesis import outputs


def _fixed(number: int, fmt: str, value) -> bytes:
  """A 32-bit (fmt "<f") or 64-bit ("<d") fixed-width field."""
  return varint(number << 3 | (5 if struct.calcsize(fmt) == 4 else 1)) + struct.pack(fmt, value)


def _int(number: int, value: int) -> bytes:
  return varint(number << 3) + varint(value)


def _event(step: int, **payload) -> bytes:
  event = _fixed(1, "<d", time.time()) + _int(2, step)
  if "file_version" in payload:
    event += field(3, payload["file_version"].encode())
  if "values" in payload:
    event += field(5, b"".join(field(1, v) for v in payload["values"]))
  return tfrecord.frame(event)


class Writer:
  """Appends scalars, images and audio to one event file in `logdir`."""

  def __init__(self, logdir):
    os.makedirs(logdir, exist_ok=True)
    name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
    self.path = os.path.join(logdir, name)
    with open(self.path, "ab") as f:
      f.write(_event(0, file_version="brain.Event:2"))

  def _write(self, step: int, values) -> None:
    with open(self.path, "ab") as f:
      f.write(_event(step, values=values))

  def scalars(self, step: int, values: dict) -> None:
    """{tag: number} at `step`."""
    self._write(step, [field(1, tag.encode()) + _fixed(2, "<f", float(value))
                       for tag, value in values.items()])

  def samples(self, step: int, generated, real, audio: np.ndarray, sample_rate: int) -> None:
    """The stage's sample grid (uint8 [H, W, 1]), real spectra images ([N, H, W, 1] in
    [0, 1]: the first) and the grid's audio [S]."""
    real = (np.asarray(real)[0] * 255).astype(np.uint8)
    values = [field(1, tag.encode()) + field(4, _int(1, image.shape[0]) + _int(2, image.shape[1])
                                             + _int(3, image.shape[2])
                                             + field(4, outputs.encode_png(image)))
              for tag, image in (("spectra/generated", generated), ("spectra/real", real))]
    wav = io.BytesIO()
    sf.write(wav, np.asarray(audio, np.float32), sample_rate, subtype="PCM_16", format="WAV")
    values.append(field(1, b"audio/generated") + field(6, _fixed(1, "<f", sample_rate)
                                                      + _int(2, 1) + _int(3, len(audio))
                                                      + field(4, wav.getvalue())
                                                      + field(5, b"audio/wav")))
    self._write(step, values)

"""What reverbsynth writes for people: WAV and PNG files, each complete or not there at all,
and progress on stderr."""

import contextlib
import os
import sys
import tempfile
import time

import numpy as np

WAV_SUBTYPES = {"float": "FLOAT", "16": "PCM_16", "24": "PCM_24"}


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary name beside `path`; renames it to `path` only if the block succeeds."""
  path = os.fspath(path)
  directory, name = os.path.split(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  suffix = name[name.find("."):] if "." in name else ""  # Whole: Keras wants .weights.h5.
  fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=directory)
  os.close(fd)
  try:
    yield tmp
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a finished file is not.
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_wav(path, audio: np.ndarray, sample_rate: int, bits: str = "float") -> None:
  """Writes mono audio [N] (float, within [-1, 1] for PCM) as a WAV of WAV_SUBTYPES[bits]."""
  import soundfile as sf
  with atomic_path(path) as tmp:
    sf.write(tmp, np.asarray(audio, np.float32), sample_rate, subtype=WAV_SUBTYPES[bits],
             format="WAV")


def write_png(path, image: np.ndarray) -> None:
  """Writes a uint8 image [H, W, 1 or 3] as PNG."""
  import tensorflow as tf
  with atomic_path(path) as tmp:
    tf.io.write_file(tmp, tf.io.encode_png(image))


def spectra_image(spectra) -> np.ndarray:
  """Channel 0 (log magnitude) of normalized spectra [..., T, F, 2] as images [..., F, T, 1]
  in [0, 1], low frequencies at the bottom."""
  x = np.swapaxes(np.asarray(spectra)[..., :1], -3, -2)[..., ::-1, :, :]
  return (np.clip(x, -1.0, 1.0) + 1.0) / 2.0


def audio_image(audio: np.ndarray, sample_rate: int, height: int = 128,
                hop: int = 256) -> np.ndarray:
  """Log-mel spectrogram of audio [N] as a uint8 image [height, frames, 1], 80 dB range."""
  import librosa
  mel = librosa.feature.melspectrogram(y=np.asarray(audio, np.float32), sr=sample_rate,
                                       n_fft=1024, hop_length=hop, n_mels=height)
  db = librosa.power_to_db(mel, ref=np.max(mel) if mel.max() > 0 else 1.0, top_db=80.0)
  return ((db[::-1] + 80.0) / 80.0 * 255).clip(0, 255).astype(np.uint8)[..., None]


class Progress:
  """Progress on stderr: a bar on a terminal; in a log (stderr not a terminal) one summary
  line per phase instead. A phase ends when `update` gets another `phase`, and at `close`.
  Nothing at all when not `enabled`."""

  def __init__(self, enabled: bool, total: int, unit: str, phase: str = ""):
    from tqdm import tqdm
    self.log = enabled and not sys.stderr.isatty()
    self.bar = tqdm(total=total, unit=unit, desc=phase, file=sys.stderr, dynamic_ncols=True,
                    disable=self.log or not enabled)
    self.unit, self.phase, self.values, self.count = unit, phase, {}, 0
    self.started = self.last = time.perf_counter()

  def update(self, count: int, phase=None, **values) -> None:
    """`count` more units done, in `phase` (default: the current one); `values` (numbers,
    e.g. losses) are shown beside the bar and in the summary line."""
    if phase is not None and phase != self.phase:
      self._summary()
      self.phase, self.count, self.started = phase, 0, self.last
      self.bar.set_description(phase, refresh=False)
    self.count += count
    self.values = values
    self.bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
    self.bar.update(count)
    self.last = time.perf_counter()

  def _summary(self) -> None:
    if not (self.log and self.count):
      return
    seconds = max(self.last - self.started, 1e-6)
    values = "".join(f", {k} {v:.3g}" for k, v in self.values.items())
    print(f"{self.phase}: {self.count} {self.unit}s in {seconds:.1f} s "
          f"({self.count / seconds:.3g} {self.unit}s/s){values}", file=sys.stderr, flush=True)

  def close(self) -> None:
    self._summary()
    self.count = 0
    self.bar.close()

  def __enter__(self):
    return self

  def __exit__(self, kind, *_):
    if kind is not None:
      self.count = 0  # A phase cut short has no summary: the error says what happened.
    self.close()

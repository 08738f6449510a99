"""Files reverbsynth writes for people: WAV and PNG, each complete or not there at all."""

import contextlib
import os
import tempfile

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

"""What reverbsynth writes for people: WAV and PNG files (each complete or not there at all)
and the pictures in them."""

import os

import numpy as np
import PIL.Image

from reverbsynth import paths, spectral
from reverbsynth.storage import atomic_path

WAV_SUBTYPES = {"float": "FLOAT", "16": "PCM_16", "24": "PCM_24"}
PEAK = 10 ** (-1 / 20)  # The loudest sample written: -1 dBFS.


def normalize(audio: np.ndarray, loudness_db=None, only_down: bool = False) -> np.ndarray:
  """Audio [...] float32 scaled by one gain: to an RMS of `loudness_db` dBFS if given, else to
  a peak of PEAK; never above PEAK, and with `only_down` never louder than it was."""
  peak = float(np.abs(audio).max()) if audio.size else 0.0
  if peak == 0.0:
    return audio
  gain = PEAK / peak
  if loudness_db is not None:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    gain = min(gain, 10 ** (loudness_db / 20) / rms)
  if only_down:
    gain = min(gain, 1.0)
  return (audio * gain).astype(np.float32)


# libsndfile's sf_command that turns off the PEAK chunk of float WAVs, whose timestamp
# would make the same song's WAV differ byte by byte from one run to the next.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def write_wav(path, audio: np.ndarray, sample_rate: int, bits: str = "float") -> None:
  """Writes audio [N] (mono) or [N, C] (float, within [-1, 1] for PCM) as a WAV of
  WAV_SUBTYPES[bits], atomically: the same audio, the same bytes."""
  import soundfile as sf
  channels = 1 if np.ndim(audio) == 1 else np.shape(audio)[1]
  with atomic_path(path) as tmp, sf.SoundFile(tmp, "w", sample_rate, channels,
                                              WAV_SUBTYPES[bits], format="WAV") as f:
    sf._snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)  # Before any data.
    f.write(np.asarray(audio, np.float32))


def file_names(labels) -> dict:
  """{label: the part of a file name that stands for it}: letters, digits and ._- only (no
  folders, never absolute), distinct for distinct labels."""
  names = {label: paths.slug(label) or "effect" for label in labels}
  if len(set(names.values())) < len(names):  # As 'ir=/a/b.wav' and 'ir=/a-b.wav' would.
    names = {label: f"{name}-{i}" for i, (label, name) in enumerate(names.items())}
  return names


def write_notes(grid, audio: np.ndarray, sample_rate: int, out, bits: str = "float",
                png: bool = False) -> None:
  """Writes notes [G, S] of a grid [synthesizer.GridNote] into `out` as
  [FAMILY-]PITCH-EFFECT-vVELOCITY-zLATENT.wav (and .png, their spectrograms, with `png`)."""
  names = file_names(dict.fromkeys(note.effect for note in grid))  # In the grid's order.
  for note, sound in zip(grid, audio):
    family = f"{note.family}-" if note.family else ""
    name = os.path.join(out, f"{family}{note.pitch}-{names[note.effect]}-v{note.velocity}"
                             f"-z{note.latent}")
    write_wav(name + ".wav", sound, sample_rate, bits)
    if png:
      write_png(name + ".png", audio_image(sound, sample_rate))


def write_png(path, image: np.ndarray) -> None:
  """Writes a uint8 image [H, W, 1 (grey) or 3 (RGB)] as PNG."""
  image = np.ascontiguousarray(image, np.uint8)
  with atomic_path(path) as tmp:
    PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp, "PNG")


def spectra_image(spectra) -> np.ndarray:
  """Channel 0 (log magnitude) of normalized spectra [..., T, F, 2] as images [..., F, T, 1]
  in [0, 1], low frequencies at the bottom."""
  x = np.swapaxes(np.asarray(spectra)[..., :1], -3, -2)[..., ::-1, :, :]
  return (np.clip(x, -1.0, 1.0) + 1.0) / 2.0


def audio_image(audio: np.ndarray, sample_rate: int, height: int = 128,
                hop: int = 256) -> np.ndarray:
  """Log-mel spectrogram of audio [N] as a uint8 image [height, frames, 1], 80 dB range
  below its loudest pixel (1024-sample Hann frames, centred)."""
  nfft = 1024
  x = np.pad(np.asarray(audio, np.float64), nfft // 2, mode="reflect" if len(audio) > nfft
             else "constant")
  starts = np.arange(0, len(x) - nfft + 1, hop)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nfft) / nfft)
  power = np.abs(np.fft.rfft(x[starts[:, None] + np.arange(nfft)] * window)) ** 2
  mel = (power @ spectral.mel_filters(sample_rate, nfft, height)).T  # [height, frames]
  db = 10 * np.log10(np.maximum(mel, 1e-10) / max(mel.max(), 1e-10))
  return ((np.maximum(db, -80.0)[::-1] + 80.0) / 80.0 * 255).clip(0, 255).astype(
      np.uint8)[..., None]


def audio_images(notes: np.ndarray, sample_rate: int) -> np.ndarray:
  """audio_image of each of notes [N, S], in [0, 1]: [N, 128, frames, 1] float32."""
  return np.stack([audio_image(n, sample_rate) for n in notes]).astype(np.float32) / 255.0

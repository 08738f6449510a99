"""A ddsp run's learned effects as plug-ins: the impulse response and dry gain of an effect
label, applied to any audio (`reverbsynth apply`)."""

import os

import keras
import numpy as np

from reverbsynth import storage
from reverbsynth.errors import UserError
from reverbsynth.synthesis import outputs


def learned(synth, effect: str) -> tuple:
  """(dry gain, impulse response [R] float64 at synth.sample_rate) of `effect`; UserError
  when the run did not learn it as a response."""
  if not synth.plays_audio:
    raise UserError(f"the run's generator is '{synth.config.model.generator}', which learns no "
                    "effect responses: give a run of the ddsp generator (--config ddsp)")
  if effect not in synth.labels.effects:
    raise UserError(f"the model knows no effect {effect!r}; it was trained on "
                    f"{', '.join(synth.labels.effects)}")
  if effect not in synth.labels.linear:
    raise UserError(f"effect {effect!r} is not linear and time-invariant, so the model draws "
                    "it with the synth's controls rather than learning it as a response; "
                    f"learned as responses: {', '.join(synth.labels.linear) or 'none'}")
  responses, index = synth.generator.responses, synth.labels.effects.index(effect)
  dry = float(keras.ops.convert_to_numpy(responses.dry_gains())[index])
  response = keras.ops.convert_to_numpy(responses.impulse_responses())[index]
  return dry, response.astype(np.float64)


def at_rate(response: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
  """An impulse response [R] at `rate` brought to `target_rate`, the same filter (its taps
  scaled by rate / target_rate, as a convolution sum over more samples adds more of them)."""
  if rate == target_rate:
    return response
  import librosa
  return librosa.resample(response, orig_sr=rate, target_sr=target_rate,
                          res_type="soxr_hq") * (rate / target_rate)


def apply(audio: np.ndarray, rate: int, dry: float, response: np.ndarray,
          response_rate: int) -> np.ndarray:
  """audio [N, C] at `rate` through (dry gain, impulse response [R] at response_rate):
  [N + R' - 1, C], the tail kept (R' the response's length at `rate`)."""
  import scipy.signal
  h = at_rate(response, response_rate, rate)
  wet = scipy.signal.fftconvolve(audio.astype(np.float64), h[:, None], axes=0)
  wet[:len(audio)] += dry * audio
  return wet


def output_path(in_path: str, effect: str, out_path=None) -> str:
  """Where `apply_file` writes: `out_path`, default IN-EFFECT.wav beside the input; checked
  writable and not the input."""
  out = out_path or f"{os.path.splitext(in_path)[0]}-{outputs.file_names([effect])[effect]}.wav"
  if os.path.abspath(out) == os.path.abspath(in_path):
    raise UserError(f"--out {out} is the input file: give another name")
  storage.check_writable_file(out, "--out")
  return out


def apply_file(synth, in_path: str, effect: str, out_path: str, bits: str = "float") -> str:
  """Writes `in_path` (any WAV/FLAC/OGG soundfile reads, any rate and channels) through the
  learned `effect` to `out_path` atomically, scaled down only if it would peak above -1 dBFS.
  Returns what was written, as a line."""
  import soundfile as sf
  dry, response = learned(synth, effect)
  try:
    audio, rate = sf.read(in_path, dtype="float64", always_2d=True)
  except (sf.LibsndfileError, RuntimeError) as e:
    raise UserError(f"{in_path} is not an audio file soundfile can read ({e})") from None
  if not len(audio):
    raise UserError(f"{in_path} holds no samples")
  out = apply(audio, rate, dry, response, synth.sample_rate)
  peak = float(np.abs(out).max())
  gain = min(1.0, outputs.PEAK / peak) if peak else 1.0
  outputs.write_wav(out_path, out * gain, rate, bits)
  gain_db = 20 * np.log10(gain)
  return (f"{out_path}: {len(out) / rate:.2f} s at {rate} Hz, {audio.shape[1]} channel(s), "
          f"{(len(out) - len(audio)) / rate:.2f} s of tail"
          + (f", scaled {gain_db:.1f} dB to stay below -1 dBFS" if gain_db < -0.05 else ""))

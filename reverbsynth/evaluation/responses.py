"""A learned effect response against the real effect's: impulse responses, RT60, direct-to-
reverberant ratio and error-to-signal ratio of a click through each."""

import numpy as np

from reverbsynth.data import effects as effects_lib, manifest as manifest_lib
from reverbsynth.data.notes.note import NUM_SAMPLES, SAMPLE_RATE
from reverbsynth.evaluation import metrics
from reverbsynth.synthesis import responses


def real_response(effect: effects_lib.Effect) -> np.ndarray:
  """The impulse response [NUM_SAMPLES] at SAMPLE_RATE of an effect with its parameters
  (pedalboard), dry path included."""
  click = np.zeros(NUM_SAMPLES, np.float32)
  click[0] = 1.0
  return effect.apply(click, effect.params()).astype(np.float64)


def learned_response(synth, name: str) -> np.ndarray:
  """The learned impulse response of effect `name`, dry gain as its first tap, [NUM_SAMPLES]
  at SAMPLE_RATE."""
  dry, response = responses.learned(synth, name)
  click = np.zeros((NUM_SAMPLES, 1))
  click[0] = 1.0
  out = responses.apply(click, SAMPLE_RATE, dry, response, synth.sample_rate)[:NUM_SAMPLES, 0]
  return out


def compare(synth, data_dir) -> dict:
  """{effect: {"real": [R], "learned": [R], "rt60": (real, learned) s, "drr_db": (real,
  learned), "esr": float}} for every linear effect the run learned as a response."""
  out = {}
  for entry in manifest_lib.read(data_dir)["effects"]:
    if not entry["chain"] or entry["name"] not in synth.labels.linear:
      continue
    real = real_response(effects_lib.from_manifest(entry))
    learned = learned_response(synth, entry["name"])
    out[entry["name"]] = {
        "real": real, "learned": learned,
        "rt60": tuple(metrics.rt60(r, SAMPLE_RATE) for r in (real, learned)),
        "drr_db": tuple(metrics.direct_to_reverberant_db(r, SAMPLE_RATE) for r in (real, learned)),
        "esr": metrics.error_to_signal(real, learned)}
  return out

"""The Keras backend (tensorflow or jax), chosen in one place before Keras loads."""

import os
import sys

from reverbsynth.errors import UserError

NAMES = ("tensorflow", "jax")


def use(name: str) -> None:
  """Makes `name` the Keras backend of this process; UserError when Keras already runs
  on another (it reads KERAS_BACKEND once, at import)."""
  if name not in NAMES:
    raise UserError(f"backend {name!r} is not one of {', '.join(NAMES)}")
  if "keras" in sys.modules:
    import keras
    if keras.backend.backend() != name:
      raise UserError(f"Keras already runs on {keras.backend.backend()} in this process; "
                      f"start a new one for {name} (or set KERAS_BACKEND={name})")
    return
  os.environ["KERAS_BACKEND"] = name

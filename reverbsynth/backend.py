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


def has_accelerator() -> bool:
  """Whether this machine has a GPU that the frameworks can use (an NVIDIA device node, or
  CUDA_VISIBLE_DEVICES naming one), told without loading a framework."""
  visible = os.environ.get("CUDA_VISIBLE_DEVICES")
  if visible is not None and visible.strip() in ("", "-1"):
    return False
  return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


# What the `train` extra brings (import names): the verbs that run a model need all of it.
TRAIN_EXTRA = ("tensorflow", "keras", "jax", "tensorboard", "tensorboardX", "matplotlib")


def require_train_extra(verb: str) -> None:
  """UserError naming the install, before any work, where the train extra is missing (as on
  a Beam worker's install, which builds datasets only)."""
  import importlib.util
  missing = [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]
  if missing:
    raise UserError(f"'reverbsynth {verb}' needs the train extra ({', '.join(missing)} not "
                    "installed): pip install 'reverbsynth[train]'")

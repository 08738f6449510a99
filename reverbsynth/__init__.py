"""reverbsynth: learn audio effects with generative models."""

from importlib import metadata

try:
  __version__ = metadata.version("reverbsynth")
except metadata.PackageNotFoundError:  # Running from a source tree.
  __version__ = "0.0.0+source"

"""Recomputes gansynth_mel.npz: GANSynth's own mel matrices, as its code computes them.

tests/test_spectral.py pins reverbsynth's `spectral.mel_matrix(..., "gansynth")` to these.
They were computed once with magenta 2.1.4's `linear_to_mel_weight_matrix` (called as its
`specgrams_helper` calls it: bins mel bins over bins linear bins, 0 Hz to Nyquist). To
recompute (tensorflow installed; magenta itself is not a dependency):

  pip download magenta==2.1.4 --no-deps -d /tmp/magenta
  unzip -o /tmp/magenta/magenta-2.1.4-py3-none-any.whl 'magenta/models/gansynth/lib/*' \
    -d /tmp/magenta
  python tests/data/gansynth_mel.py /tmp/magenta
"""

import os
import sys

import numpy as np

SIZES = ((1024, 16000), (128, 16000))  # (bins, sample rate): reverbsynth's and tiny's.


def main(magenta_dir: str) -> None:
  sys.path.insert(0, magenta_dir)
  from magenta.models.gansynth.lib import spectral_ops
  arrays = {}
  for bins, rate in SIZES:
    matrix = spectral_ops.linear_to_mel_weight_matrix(bins, bins, rate, 0.0, rate / 2.0)
    rows, cols = np.nonzero(matrix)
    key = f"{bins}_{rate}"
    arrays.update({f"{key}_rows": rows.astype(np.int16), f"{key}_cols": cols.astype(np.int16),
                   f"{key}_values": matrix[rows, cols]})
  np.savez_compressed(os.path.join(os.path.dirname(__file__), "gansynth_mel.npz"), **arrays)


if __name__ == "__main__":
  main(sys.argv[1])

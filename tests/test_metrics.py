"""Model-free note measures on signals with known answers."""

import numpy as np

from reverbsynth.evaluation import metrics

RATE = 16000


def _tone(midi: float, seconds: float = 4.0, decay: float = 0.0) -> np.ndarray:
  t = np.arange(int(seconds * RATE)) / RATE
  hz = 440.0 * 2 ** ((midi - 69) / 12)
  partials = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 5))
  return (0.3 * partials * np.exp(-decay * t)).astype(np.float32)


def test_f0_error_is_the_detuning_in_cents():
  audio = np.stack([_tone(45), _tone(45.3), _tone(57)])  # In tune, +30 cents, an octave up.
  errors = metrics.f0_error_cents(audio, RATE, [45, 45, 45])
  np.testing.assert_allclose(errors, [0, 30, 1200], atol=8)
  assert metrics.pitch_accuracy(audio, RATE, [45, 45, 45]) == 2 / 3
  assert metrics.pitch_accuracy(audio, RATE, [45, 45, 45], cents=20) == 1 / 3


def test_silence_is_unvoiced_and_counts_as_a_miss():
  audio = np.stack([_tone(40), np.zeros(4 * RATE, np.float32)])
  errors = metrics.f0_error_cents(audio, RATE, [40, 40])
  assert abs(errors[0]) < 10 and np.isnan(errors[1])
  assert metrics.pitch_accuracy(audio, RATE, [40, 40]) == 0.5


def test_a_ringing_tail_raises_the_tail_ratio():
  dry = _tone(48)
  dry[3 * RATE:] = 0                                   # Released at 3 s: silent tail.
  wet = dry + np.concatenate([np.zeros(3 * RATE), 0.1 * _tone(48, 1.0, decay=3.0)])
  ratios = metrics.tail_ratio_db(np.stack([dry, wet, _tone(48)]), RATE)  # Last second.
  assert ratios[0] < -100 < ratios[1] < ratios[2]
  np.testing.assert_allclose(ratios[2], 10 * np.log10(1 / 4), atol=0.1)  # Steady: 1 s of 4.
  assert metrics.tail_sign_share(wet[None], dry[None], RATE) == 1.0
  assert metrics.tail_sign_share(dry[None], wet[None], RATE) == 0.0


def test_distribution_measures_on_known_cases():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((4000, 3))
  assert metrics.frechet_distance(a, a) < 1e-9                     # Identical: 0.
  shifted = metrics.frechet_distance(a, a + [2.0, 0.0, 0.0])
  np.testing.assert_allclose(shifted, 4.0, rtol=1e-6)             # |mu_a - mu_b|^2.
  scaled = metrics.frechet_distance(a, 3 * a)                     # Tr: 3 * (1 + 9 - 2 * 3).
  np.testing.assert_allclose(scaled, 12.0, rtol=0.05)
  sure = np.eye(5)[np.arange(100) % 5]                            # Sure and spread evenly.
  np.testing.assert_allclose(metrics.inception_score(sure), 5.0, rtol=1e-6)
  assert metrics.mean_entropy(sure) < 1e-6
  unsure = np.full((100, 5), 0.2)
  np.testing.assert_allclose(metrics.inception_score(unsure), 1.0, rtol=1e-6)
  np.testing.assert_allclose(metrics.mean_entropy(unsure), np.log(5), rtol=1e-6)
  collapsed = np.eye(5)[np.zeros(100, int)]                       # Sure, one class only.
  np.testing.assert_allclose(metrics.inception_score(collapsed), 1.0, rtol=1e-6)


def test_ndb_is_zero_for_the_same_distribution_and_large_for_another():
  rng = np.random.default_rng(1)
  centres = rng.standard_normal((10, 8)) * 5
  draw = lambda n, w: centres[rng.choice(10, n, p=w)] + rng.standard_normal((n, 8)) * 0.3
  even = np.full(10, 0.1)
  reference = draw(3000, even)
  assert metrics.ndb(reference, reference, bins=10) == 0
  assert metrics.ndb(reference, draw(1000, even), bins=10) <= 1
  skewed = np.array([0.5, 0.5] + [0.0] * 8)
  assert metrics.ndb(reference, draw(1000, skewed), bins=10) == 10  # Every bin differs.


def test_brightness_is_the_centroid_in_harmonics_and_follows_ranks_within_groups():
  t = np.arange(RATE) / RATE
  sine = lambda hz: np.sin(2 * np.pi * hz * t)
  # A sine sits at its first harmonic (log2 1 = 0) whatever its pitch; equal harmonics 1 and 3
  # put the centroid at the second (log2 2 = 1).
  audio = np.stack([sine(110.0), sine(880.0), sine(220.0) + sine(660.0)]).astype(np.float32)
  np.testing.assert_allclose(metrics.brightness(audio, RATE, [45, 81, 57], RATE), [0, 0, 1],
                             atol=0.02)
  # Levels rising with velocity in each of two groups far apart: a rank correlation of 1 once
  # each group's mean is taken out (0.48 without: the groups' levels interleave the ranks).
  levels, velocities = [-40, -30, -20, 0, 10, 20], [25, 75, 127, 25, 75, 127]
  assert metrics.follows(levels, velocities, ["a"] * 3 + ["b"] * 3) == 1.0
  assert np.isnan(metrics.follows(levels, [100] * 6, ["a"] * 6))  # One velocity: no ranks.
  assert metrics.rank_correlation([1, 2, 3], [10, 30, 20]) == 0.5

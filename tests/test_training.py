"""Training end to end on a real built dataset with configs/tiny.yaml."""

import itertools
import json
import os
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from reverbsynth.data import manifest
from reverbsynth.data.labels import Labels
from reverbsynth.errors import UserError
from reverbsynth.runs import config as config_lib, files
from reverbsynth.synthesis import synthesizer
from reverbsynth.training import cost, inputs as train_input, loop as training, steps
from tests.conftest import assert_refused, run_cli

LOSS_TERMS = {"d_wasserstein", "g_wasserstein", "gradient_penalty", "drift", "ac_pitch_real",
              "ac_effect_real", "ac_pitch_fake", "ac_effect_fake", "d_loss", "g_loss"}


def _scalar_tags(log_dir):
  tags = set()
  for root, _, names in os.walk(log_dir):
    for name in names:
      for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
        tags.update(v.tag for v in event.summary.value)
  return tags


def test_tiny_training_writes_every_artefact(tiny_run):
  out, stdout = tiny_run
  assert f"Run: {out}" in stdout and "stage 3 of 3 done" in stdout
  for name in ("config.yaml", "labels.json", "normalizer.json", "generator/generator.json",
               "generator/generator.weights.h5"):
    assert (out / name).is_file(), name
  assert json.loads((out / "labels.json").read_text())["effects"] == ["dry", "reverb"]
  for stage in range(3):
    assert (out / "checkpoints" / f"stage-{stage:02d}.npz").is_file()
    assert (out / "samples" / f"stage-{stage:02d}.png").stat().st_size > 100
    import soundfile as sf
    audio, rate = sf.read(out / "samples" / f"stage-{stage:02d}.wav")
    assert rate == 16000 and len(audio) == 2 * 3 * (4096 + 4000)  # Effects x pitches.
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
  tags = _scalar_tags(out / "logs")
  assert {f"loss/{t}" for t in LOSS_TERMS} <= tags
  assert {"spectra/generated", "spectra/real", "audio/generated"} <= tags


def test_checkpoints_are_keyed_by_each_weights_path(tiny_run):
  # Keyed by attribute path, not by Keras's variable paths (process-wide counters) nor by
  # position: a checkpoint says which array is which, and one of another model is refused
  # naming the first weight that differs.
  out, _ = tiny_run
  groups, _ = files.read_checkpoint(files.checkpoint_path(out, files.LATEST))
  assert {"embed/kernel", "embed/bias"} <= groups["generator"].keys() == groups["ema"].keys()
  assert {"iteration", "learning_rate", "embed/kernel/momentum",
          "embed/kernel/velocity"} <= groups["g_opt"].keys()
  generator = synthesizer.load(out).generator
  weights = files.weights_by_path(generator)
  pairs = files.matched("ema", weights, groups["ema"])
  assert [id(v) for v, _ in pairs] == [id(v) for v in generator.weights]
  assert all(np.array_equal(a, groups["ema"][p]) for (_, a), p in zip(pairs, weights))
  positional = {f"{i:04d}": a for i, a in enumerate(groups["ema"].values())}  # Before paths.
  assert all(np.array_equal(a, b) for (_, a), (_, b) in
             zip(files.matched("ema", weights, positional), pairs))
  renamed = {("embed/weight" if p == "embed/kernel" else p): a for p, a in groups["ema"].items()}
  with pytest.raises(ValueError, match="ema/embed/kernel is missing from the checkpoint"):
    files.matched("ema", weights, renamed)


def test_exported_generator_reloads_and_generates(tiny_run):
  out, _ = tiny_run
  synth = synthesizer.load(out)  # A run directory finds its generator/.
  assert synth.labels.effects == ("dry", "reverb") and synth.level == 2
  z = synth.latents(2, seed=1)
  spectra = synth.spectra(z, [36, 48], ["dry", "reverb"])
  assert spectra.shape == (2, 32, 128, 2)  # Level 2 brought up to full size.
  audio = synth.audio(z, [36, 48], ["dry", 1])
  assert audio.shape == (2, 4096) and np.isfinite(audio).all()
  again = synthesizer.load(out / "generator")
  np.testing.assert_allclose(again.audio(z, [36, 48], ["dry", "reverb"]), audio, atol=1e-5)
  with pytest.raises(UserError, match="knows no effect 'delay'"):
    synth.audio(z, [36, 48], ["dry", "delay"])
  with pytest.raises(UserError, match="outside the model's range 24..84"):
    synth.audio(z, [36, 90], ["dry", "dry"])


RESUME = """
import json, sys
import numpy as np
from reverbsynth.runs import config
from reverbsynth.training import loop as training
data, out = sys.argv[1], sys.argv[2]
# An EMA half-life of 8 steps: tiny's own (0.2 steps) forgets a wrongly restored EMA at once.
cfg = config.load("tiny", ["train.deterministic=true", "optimizer.ema_half_life=2.0"])
whole = training.Trainer(cfg, data, out + "/whole")
whole.train(3, progress=False)
first = training.Trainer(cfg, data, out + "/cut")
first.train(3, progress=False, max_steps=5)  # Stops 1 step into stage 1 (4 steps a stage).
cut = [int(first.stage), int(first.images_in_stage), int(first.images_total)]
resumed = training.Trainer(cfg, data, out + "/cut", resume=True)
restored = [int(resumed.stage), int(resumed.images_in_stage), int(resumed.step)]
resumed.train(3, progress=False)
weights = lambda t: t.steps.ema.get_weights() + t.steps.discriminator.get_weights()
print(json.dumps({"cut": cut, "restored": restored,
                  "images": [int(whole.images_total), int(resumed.images_total)],
                  "max_difference": float(max(np.abs(a - b).max()
                                              for a, b in zip(weights(whole), weights(resumed))))}))
"""


def test_resume_continues_at_the_image_count_and_matches_an_uninterrupted_run(tmp_path, dataset):
  # With train.deterministic the resumed run is bit-exact with the uninterrupted one on
  # any CPU, oneDNN on or off, under load. A resume that restored the wrong data position,
  # randomness, optimizer state or EMA differed by 9e-3, 1e-2, 6e-3 and 2e-3 (each broken
  # once on purpose, 2026-12-02).
  env = {**os.environ, "REVERBSYNTH_NO_COST_CHECK": "1"}
  result = subprocess.run([sys.executable, "-c", RESUME, str(dataset), str(tmp_path)],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["cut"] == [1, 8, 40] and report["restored"] == [1, 8, 5]
  assert report["images"] == [96, 96]
  assert report["max_difference"] < 1e-6, report


@pytest.mark.parametrize("precision, optimizer", [("mixed_bfloat16", "Adam"),
                                                   ("mixed_float16", "LossScaleOptimizer")])
def test_mixed_precision_computes_in_half_and_exports_float32(tmp_path, dataset, precision,
                                                              optimizer):
  os.environ["REVERBSYNTH_NO_COST_CHECK"] = "1"
  config = config_lib.load("tiny", [f"train.precision={precision}"])
  trainer = training.Trainer(config, str(dataset), str(tmp_path / "run"))
  assert keras.config.dtype_policy().name == "float32"  # Only the run's networks changed.
  before = trainer.steps.generator.get_weights()
  terms = trainer.train(3, progress=False, max_steps=6)  # Stage 1 is 4 steps: it exports.
  assert all(np.isfinite(v) for v in terms.values())
  assert trainer.steps.generator.dense.compute_dtype == precision.split("_")[1]
  assert all(w.dtype == "float32" for w in trainer.steps.generator.weights
             + trainer.steps.ema.weights)
  assert type(trainer.steps.g_opt).__name__ == optimizer
  assert any(not np.array_equal(a, b)
             for a, b in zip(before, trainer.steps.generator.get_weights()))
  synth = synthesizer.load(tmp_path / "run")  # Loads in float32.
  z = synth.latents(4, seed=0)
  exported = synth.spectra(z, [36] * 4, ["reverb"] * 4)
  half = synthesizer.Synthesizer(trainer.steps.ema, config, trainer.labels, trainer.normalizer,
                               1).spectra(z, [36] * 4, ["reverb"] * 4)
  assert exported.dtype == half.dtype == np.float32
  assert 0 < np.abs(exported - half).max() < 0.1  # Same weights, rounded in half precision.


DISTRIBUTED = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from reverbsynth.runs import config
from reverbsynth.training import loop as training, steps_tensorflow
steps_tensorflow._strategy = lambda distribute: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
trainer = training.Trainer(config.load("tiny", ["train.distribute=true"]), sys.argv[1], sys.argv[2])
terms = trainer.train(2, progress=False)
copies = [[c.numpy() for c in w.value.values] for w in trainer.steps.generator.weights]
print(json.dumps({"replicas": trainer.steps.strategy.num_replicas_in_sync,
                  "finite": bool(np.isfinite(list(terms.values())).all()),
                  "in_sync": all(np.array_equal(c[0], c[1]) for c in copies),
                  "images": int(trainer.images_total)}))
"""


def test_mirrored_strategy_splits_batches_over_replicas_and_resumes_on_one(tmp_path, dataset):
  env = {**os.environ, "REVERBSYNTH_NO_COST_CHECK": "1"}
  run = tmp_path / "run"
  result = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(dataset), str(run)],
                          capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report == {"replicas": 2, "finite": True, "in_sync": True, "images": 64}
  os.environ["REVERBSYNTH_NO_COST_CHECK"] = "1"
  single = training.Trainer(config_lib.load("tiny"), str(dataset), str(run), resume=True)
  assert (int(single.stage), int(single.images_total)) == (2, 64)
  single.train(3, progress=False)
  assert int(single.images_total) == 96


def test_the_example_stream_restarts_after_any_count_across_epochs(dataset):
  config = config_lib.load("tiny")
  labels = Labels.from_manifest(manifest.read(dataset), config.model.pitch_min,
                                config.model.num_pitches)
  per_epoch = manifest.read(dataset)["counts"]["per_split"]["train"]["records"]

  def stream(skip, count):
    examples = train_input._examples(str(dataset), config, labels, seed=3, skip=skip)
    return [(float(a.sum()), *map(int, ids)) for a, ids in itertools.islice(examples, count)]

  whole = stream(0, 3 * per_epoch)
  assert sorted(whole[:per_epoch]) == sorted(whole[per_epoch:2 * per_epoch])  # Every note once.
  assert whole[:per_epoch] != whole[per_epoch:2 * per_epoch]                 # Reshuffled.
  for skip in (1, per_epoch, per_epoch + 5, 2 * per_epoch - 1):
    assert stream(skip, per_epoch) == whole[skip:skip + per_epoch]


def test_train_bad_inputs(tmp_path, dataset, tiny_run, nsynth_tfrecord, run_here):
  assert_refused(run_here("train", "--data", tmp_path, "--config", "tiny", "--out", tmp_path / "r"),
           "is not a reverbsynth dataset")
  assert_refused(run_here("train", "--data", dataset, "--config", "tiny", "model.latent_sise=8"),
                 "config key 'model.latent_sise' does not exist (valid under model: "
                 "conditions, fmap_base")
  assert_refused(run_here("train", "--data", dataset, "--config", "nope"),
                 "config 'nope' not found")
  assert_refused(run_here("train", "--data", dataset, "--config", "tiny", "--out", tmp_path / "h",
                   "train.precision=half"), "train.precision 'half' is not one of float32")
  out, _ = tiny_run
  other = tmp_path / "other"
  assert run_cli("build-dataset", "--source", nsynth_tfrecord, "--out", other, "--effect",
                 "delay", "--valid-fraction", 0, "--test-fraction", 0,
                 "--no-progress").returncode == 0
  assert_refused(run_here("train", "--data", other, "--config", "tiny", "--out", out, "--resume"),
           "do not match the run's ['dry', 'reverb']")
  assert_refused(run_here("train", "--data", dataset, "--config", "tiny", "--out", out),
           "already holds a run: give --resume")
  assert_refused(run_here("train", "--data", dataset, "--config", "tiny", "--out", out, "--resume",
                         "model.fmap_max=32"), "was trained with other model settings")


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, dataset):
  out = tmp_path / "nan"
  result = run_cli("train", "--data", dataset, "--config", "tiny", "--out", out, "--stages", 3,
                   "optimizer.learning_rate=1e30", "--no-progress")
  assert result.returncode == 1, result.stderr  # Not the user's fault: exit 1, one line.
  failed = [line for line in result.stderr.splitlines()
            if line.startswith("reverbsynth: failed:")]
  assert len(failed) == 1 and "loss became NaN" in failed[0], result.stderr
  assert "Traceback" not in result.stderr
  assert (out / "labels.json").is_file()


def test_ema_half_life_is_a_fraction_of_a_stage():
  config = config_lib.load("cpu", ["optimizer.ema_half_life=0.05"])
  per_stage = config.schedule.images_per_stage
  for batch in (8, 16, 64):
    decay = steps.ema_decay(config, batch)
    # After 5 % of a stage's images the EMA holds half of where it started, after a whole
    # stage (20 half-lives) less than 1e-5 of it, whatever the batch size.
    assert decay ** (0.05 * per_stage / batch) == pytest.approx(0.5)
    assert decay ** (per_stage / batch) < 1e-5


def test_a_stream_stays_prefetch_ahead_of_its_consumer_and_stops_when_closed(dataset):
  # Each batch is made once: a stream whose consumer pauses (a training step, or a run that
  # stopped) makes no more than `prefetch` + 1 batches ahead of it. (A feeder that submitted a
  # chunk again at each full-queue retry made 10 batches a second for nobody, for as long
  # as the process lived.)
  config = config_lib.load("tiny")
  labels = Labels.from_manifest(manifest.read(dataset), config.model.pitch_min,
                                config.model.num_pitches)
  normalizer = train_input.compute_normalizer(str(dataset), config, labels)
  stream = train_input.Batches(str(dataset), config, labels, normalizer, 4, prefetch=2)
  submitted = []
  submit = stream._pool.submit
  stream._pool.submit = lambda *args: submitted.append(1) or submit(*args)
  next(stream)
  time.sleep(1.5)
  assert len(submitted) <= 1 + 2 + 1, len(submitted)  # Taken, `prefetch` queued, one waiting.
  stream.close()
  stream._feeder.join(timeout=10)
  assert not stream._feeder.is_alive()


def test_normalizer_leaves_tanh_headroom(dataset):
  config = config_lib.load("tiny", ["train.normalizer_margin=0.8"])
  labels = Labels.from_manifest(manifest.read(dataset), config.model.pitch_min,
                                config.model.num_pitches)
  normalizer = train_input.compute_normalizer(str(dataset), config, labels)
  x = next(train_input.Batches(str(dataset), config, labels, normalizer, 32))[0]
  for channel in range(2):
    lo, hi = np.percentile(x[..., channel], [0.1, 99.9])
    assert -0.85 < lo < -0.7 and 0.7 < hi < 0.85, (channel, lo, hi)
    assert np.mean(np.abs(x[..., channel]) >= 0.999) < 0.001  # Nothing at tanh's limits.


def test_each_stage_starts_with_fresh_optimizer_state(tmp_path, dataset):
  os.environ["REVERBSYNTH_NO_COST_CHECK"] = "1"
  trainer = training.Trainer(config_lib.load("tiny"), str(dataset), str(tmp_path / "run"))
  moments = lambda opt: [v.numpy() for v in opt.variables if v.name != "learning_rate"]
  trainer.train(1, progress=False)  # Stage 0, four steps: Adam's moments fill.
  assert sum(np.any(m != 0)
             for m in moments(trainer.steps.g_opt) + moments(trainer.steps.d_opt)) > 10
  trainer.train(2, progress=False, max_steps=0)  # Enters stage 1, takes no step.
  assert int(trainer.stage) == 1
  assert all(np.all(m == 0) for m in moments(trainer.steps.g_opt) + moments(trainer.steps.d_opt))
  assert trainer.steps.g_opt.learning_rate.numpy() == pytest.approx(0.0008)
  trainer.train(2, progress=False, max_steps=1)
  assert int(trainer.steps.g_opt.iterations) == 1  # Bias correction starts over.


def test_a_config_at_a_lower_rate_reads_the_notes_resampled(dataset):
  from reverbsynth.data import records
  full = records.read_split(dataset, "train", 4096, limit=8)
  half = records.read_split(dataset, "train", 2048, limit=8, sample_rate=8000)
  assert half["audio"].shape == (8, 2048) and list(half["pitch"]) == list(full["pitch"])
  # A model's pitch range: records outside skipped.
  some = range(int(np.median(full["pitch"])), 128)
  within = records.read_split(dataset, "train", 4096, pitches=some)
  every = records.read_split(dataset, "train", 4096)
  assert 0 < len(within["pitch"]) < len(every["pitch"])
  np.testing.assert_array_equal(within["audio"], every["audio"][np.isin(every["pitch"], some)])
  peak_hz = lambda audio, rate: (np.abs(np.fft.rfft(audio, axis=-1)).argmax(-1) * rate
                                 / audio.shape[-1])
  np.testing.assert_allclose(peak_hz(half["audio"], 8000), peak_hz(full["audio"], 16000),
                             atol=8000 / 2048)
  config = config_lib.load("tiny", ["audio.sample_rate=8000", "audio.num_samples=2048",
                                    "spectral.nfft=128", "spectral.hop=64",
                                    "model.start_shape=[8, 16]"])
  labels = Labels.from_manifest(manifest.read(dataset), config.model.pitch_min,
                                config.model.num_pitches)
  normalizer = train_input.compute_normalizer(str(dataset), config, labels)
  spectra = next(train_input.Batches(str(dataset), config, labels, normalizer, 4))[0]
  assert spectra.shape == (4, 32, 64, 2)


def test_a_step_with_the_projection_critic_and_the_envelope_term(tmp_path, dataset):
  # cpu.yaml's losses on tiny's model: the envelope term is measured on the step's
  # batches and enters G's loss with its weight.
  os.environ["REVERBSYNTH_NO_COST_CHECK"] = "1"
  config = config_lib.load("tiny", ["loss.projection=true", "loss.envelope=2.0"])
  trainer = training.Trainer(config, str(dataset), str(tmp_path / "run"))
  terms = trainer.train(1, progress=False, max_steps=2)
  assert terms["envelope"] > 0.01  # An untrained generator's envelope is not the data's.
  assert terms["g_loss"] == pytest.approx(
      terms["g_wasserstein"] + 10 * (terms["ac_pitch_fake"] + terms["ac_effect_fake"])
      + 2.0 * terms["envelope"], rel=1e-4, abs=1e-4)
  assert "loss/envelope" in _scalar_tags(tmp_path / "run" / "logs")


def test_a_ddsp_step_with_the_envelope_term(tmp_path, dataset):
  # The ddsp objective's envelope term, on the step's audio, enters G's loss with its weight
  # (training.objectives: one objective for both backends' steps).
  config = config_lib.load("tiny-ddsp", ["loss.envelope=2.0"])
  trainer = training.Trainer(config, str(dataset), str(tmp_path / "run"))
  terms = trainer.train(1, progress=False, max_steps=2)
  cfg = config.loss
  assert terms["envelope"] > 0.01  # An untrained generator's envelope is not the data's.
  assert terms["g_loss"] == pytest.approx(
      terms["g_wasserstein"] + cfg.ac_weight * (terms["ac_pitch_fake"] + terms["ac_effect_fake"])
      + 2.0 * terms["envelope"] + terms["reconstruction"] + cfg.kl * terms["kl"]
      + terms["response"], rel=1e-4, abs=1e-4)
  assert "loss/envelope" in _scalar_tags(tmp_path / "run" / "logs")


def test_the_cost_warning_names_the_days_for_the_papers_config_only(caplog, monkeypatch):
  # On a CPU, the paper's config for 8 stages is weeks: one warning line; tiny is none.
  monkeypatch.delenv("REVERBSYNTH_NO_COST_CHECK", raising=False)
  monkeypatch.setattr(cost, "_has_gpu", lambda: False)
  with caplog.at_level("WARNING", logger="reverbsynth"):
    cost.warn(config_lib.load("tiny"), 3)
    assert not caplog.records
    cost.warn(config_lib.load("reverbsynth"), 8)
  [record] = caplog.records
  assert re.search(r"config 'reverbsynth' needs about \d+ days for 8 stages on this CPU",
                   record.getMessage()), record.getMessage()

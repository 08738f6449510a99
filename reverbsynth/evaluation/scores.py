"""What a run learned, against real notes: one row of figures per set of notes.

The real row is the dataset's test split; each generated row has one note per
test note, with the same pitch and effect labels and a latent drawn from the
seed. References come from the training split: the judge's embeddings (for the
Frechet distance) and log spectra (for NDB's k-means bins). Real held-out notes
scored this way show what "ideal" looks like on this dataset.
"""

import dataclasses
import logging

import numpy as np

from reverbsynth.data import manifest as manifest_lib, records
from reverbsynth.errors import UserError
from reverbsynth.evaluation import judge as classifier, metrics
from reverbsynth.model import latent_prior, schedule
from reverbsynth.runs import files
from reverbsynth.synthesis import synthesizer

logger = logging.getLogger(__name__)
F0_NOTES = 200          # pYIN is slow: f0 is measured on at most this many notes per row.


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
  seed: int = 0
  ndb_bins: int = 50
  reference_notes: int = 2000   # Training notes for the embedding and NDB references.
  classifier_epochs: int = 5
  retrain_classifier: bool = False
  per_stage: bool = False
  progress: bool = True


@dataclasses.dataclass
class Notes:
  """A set of notes to score: audio [N, S] with their asked MIDI pitches, effect indices,
  family names and MIDI velocities [N]."""
  name: str
  audio: np.ndarray
  pitches: np.ndarray
  effects: np.ndarray
  families: np.ndarray
  velocities: np.ndarray


def references(judge: classifier.Judge, audio: np.ndarray) -> dict:
  """What rows are compared with: the judge's embeddings and pooled spectra of audio [N, S]."""
  out = judge.outputs(audio)
  return {"embedding": out["embedding"], "spectra": out["spectra"]}


def stage_synthesizers(run_dir, synth: synthesizer.Synthesizer, data_dir) -> list:
  """[(stage index, images seen, {"ema": Synthesizer, "raw": Synthesizer})] for every
  stage checkpoint of a run, in order: the EMA generator and the raw one it averages (a
  ddsp one with its latent prior fitted on `data_dir`'s dry notes, as training does)."""
  found = []
  dry = (latent_prior.dry_notes(data_dir, synth.config.audio, synth.labels)
         if synth.plays_audio else None)
  for index, path in files.stage_checkpoints(run_dir):
    groups, counters = files.read_checkpoint(path)
    generators = {kind: files.new_generator(synth.model_config) for kind in ("ema", "raw")}
    for kind, generator in generators.items():
      for variable, array in files.matched(kind, files.weights_by_path(generator),
                                           groups["ema" if kind == "ema" else "generator"]):
        variable.assign(array)
    level = schedule.stage(index, synth.model_config.num_levels).level
    found.append((index, counters["images_total"], {
        kind: synthesizer.Synthesizer(
            g, synth.config, synth.labels, synth.normalizer, level,
            None if dry is None else latent_prior.fit_to_notes(g, dry))
        for kind, g in generators.items()}))
  return found


def score(notes: Notes, judge, reference: dict, settings: Settings, sample_rate: int,
          tail_samples: int, effect_names) -> dict:
  """Every figure for one set of notes; the tail is a note's released part. Where the
  judge knows families (or velocities) its accuracy on them too; on every set, how the held
  part's level and brightness follow velocity within each family and effect, and each
  family's mean brightness."""
  out = judge.outputs(notes.audio)
  pitch, effect = out["pitch"], out["effect"]
  rng = np.random.default_rng(settings.seed)
  f0_rows = rng.permutation(len(notes.audio))[:F0_NOTES]
  tail = metrics.tail_ratio_db(notes.audio, tail_samples)
  held = notes.audio.shape[1] - tail_samples
  bright = metrics.brightness(notes.audio, sample_rate, notes.pitches, held)
  groups = [f"{f}/{e}" for f, e in zip(notes.families, notes.effects)]
  accuracy = judge.accuracy_of(out, notes.pitches, notes.effects, notes.families,
                               notes.velocities)
  return {
      "notes": len(notes.audio),
      "pitch_accuracy": accuracy["pitch"],
      "pitch_entropy": metrics.mean_entropy(pitch),
      "effect_accuracy": accuracy["effect"],
      **{f"{name}_accuracy": accuracy[name] for name, _ in judge.labels.attributes},
      "level_follows_velocity": metrics.follows(metrics.level_db(notes.audio, held),
                                                notes.velocities, groups),
      "brightness_follows_velocity": metrics.follows(bright, notes.velocities, groups),
      "family_brightness": {f: float(bright[notes.families == f].mean())
                            for f in np.unique(notes.families)},
      "inception_score_pitch": metrics.inception_score(pitch),
      "inception_score_effect": metrics.inception_score(effect),
      "frechet_distance": metrics.frechet_distance(reference["embedding"], out["embedding"]),
      "ndb": metrics.ndb(reference["spectra"], out["spectra"], settings.ndb_bins,
                         seed=settings.seed),
      "ndb_bins": settings.ndb_bins,
      "f0_within_50_cents": metrics.pitch_accuracy(notes.audio[f0_rows], sample_rate,
                                                   notes.pitches[f0_rows]),
      "tail_db": {name: float(tail[notes.effects == i].mean())
                  for i, name in enumerate(effect_names) if np.any(notes.effects == i)},
  }


def evaluate(run_dir, data_dir, settings: Settings | None = None) -> dict:
  """{"rows": {name: figures}, "judge": held-out accuracy, ...} and the notes for pictures."""
  settings = settings or Settings()
  synth = synthesizer.load(run_dir)
  manifest = manifest_lib.read(data_dir)
  effects = tuple(e["name"] for e in manifest["effects"])
  if effects != synth.labels.effects:
    raise UserError(f"the run was trained on effects {list(synth.labels.effects)} but the "
                    f"dataset has {list(effects)}: evaluate on the dataset it was trained on")
  n = synth.num_samples
  test = records.read_split(data_dir, "test", n, sample_rate=synth.sample_rate,
                            pitches=synth.pitches)
  if not len(test["audio"]):
    raise UserError(f"{data_dir} has no test split: rebuild it with --test-fraction > 0")
  judge = classifier.load_or_train(data_dir, synth.config, synth.labels,
                                   settings.classifier_epochs, settings.retrain_classifier,
                                   settings.progress)
  train = records.read_split(data_dir, "train", n, limit=settings.reference_notes,
                             sample_rate=synth.sample_rate, pitches=synth.pitches)
  refs = references(judge, train["audio"])
  test_labels = (test["pitch"], test["effect"], test["family"], test["velocity"])
  sets = [Notes("real (test split)", test["audio"], *test_labels)]
  generators, curve = [("generated", synth)], []
  if settings.per_stage:
    for index, images, kinds in stage_synthesizers(run_dir, synth, data_dir):
      for kind, stage_synth in kinds.items():
        name = f"stage {index + 1}" + (" raw" if kind == "raw" else "")
        generators.append((name, stage_synth))
        curve.append({"row": name, "stage": index + 1, "images": images, "generator": kind})
  for name, s in generators:  # The same seed: each generator's prior maps the same draws.
    z = s.latents(len(test["audio"]), settings.seed)
    audio = s.audio(z, test["pitch"], test["effect"], families=test["family"],
                    velocities=test["velocity"])
    sets.append(Notes(name, audio, *test_labels))
  rows = {}
  for notes in sets:
    logger.info(f"scoring {notes.name}: {len(notes.audio)} notes")
    rows[notes.name] = score(notes, judge, refs, settings, synth.sample_rate,
                             synth.num_samples - synth.held_samples, effects)
  return {"run": str(run_dir), "data": str(data_dir), "judge_accuracy": judge.accuracy,
          "rows": rows, "curve": curve, "sets": sets, "synth": synth, "judge": judge}

"""The `reverbsynth` command: one thin command per verb, the work done elsewhere."""

import contextlib
import functools
import logging
import os

import click

from reverbsynth import console, paths, storage
from reverbsynth.errors import Failure


class _UserPath(click.Path):
  """click.Path, given as the user means it: against the working directory, ~ expanded."""

  def convert(self, value, param, ctx):
    return super().convert(storage.resolve(value), param, ctx)


def _needs_train_extra(command):
  """Refuses the command in one line where the train extra is missing."""
  @functools.wraps(command)
  def checked(*args, **kwargs):
    from reverbsynth import backend
    backend.require_train_extra(str(click.get_current_context().info_name))
    return command(*args, **kwargs)
  return checked


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reverbsynth", prog_name="reverbsynth")
@click.option("--verbose", is_flag=True,
              help="Also show the log lines of TensorFlow, CUDA, absl and other libraries.")
def cli(verbose):
  """Learn audio effects with generative models.

  build-dataset renders notes through effects into TFRecords; see each
  command's --help.
  """
  console.show_logs(logging.INFO if verbose else logging.WARNING)


_progress_option = click.option(
    "--progress/--no-progress", default=True, show_default=True,
    help="Progress bars on a terminal; in a log, one line per stage or phase instead.")
_bits_option = click.option("--bits", type=click.Choice(["float", "16", "24"]), default="float",
                            show_default=True, help="WAV sample format.")


def _run_option(what: str = "A run directory (or its generator/)"):
  return click.option("--run", default=None, type=_UserPath(), metavar="DIR",
                      help=f"{what}. Default: the latest run, else the model shipped with "
                           "reverbsynth.")


@cli.command("build-dataset", context_settings={
    "ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--source", default=None, metavar="SPEC",
              help="soundfont[:PATH.sf2] (default: the built-in GM SoundFont), or an "
                   "NSynth .tfrecord file / glob / directory, or an NSynth json/wav "
                   "directory (examples.json + audio/).")
@click.option("--effect", "effects", multiple=True, metavar="SPEC",
              help="Effect to apply, repeatable: a preset or type, with parameters "
                   "and chains, e.g. reverb, 'hall(room_size=0.95)', chorus+delay. "
                   "Default: reverb. List them with 'reverbsynth effects'.")
@click.option("--keep-dry/--no-dry", default=True, show_default=True,
              help="Also write the dry notes, as effect 0 'dry'.")
@click.option("--randomize", is_flag=True,
              help="Draw each effect parameter per note from its range (with --seed), "
                   "which a spec may narrow, e.g. 'reverb(room_size=0.5..0.9)'; "
                   "parameters fixed in the spec stay fixed.")
@click.option("--family", "families", multiple=True, metavar="NAME",
              help="Instrument family to keep, repeatable (bass, keyboard, ...).")
@click.option("--instrument-source", "sources", multiple=True, metavar="NAME",
              help="acoustic, electronic or synthetic; repeatable.")
@click.option("--pitch-min", default=24, show_default=True, type=int,
              help="Lowest MIDI pitch to keep.")
@click.option("--pitch-max", default=84, show_default=True, type=int,
              help="Highest MIDI pitch to keep.")
@click.option("--velocity", "velocities", multiple=True, type=int,
              help="MIDI velocity to keep, repeatable (NSynth: 25 50 75 100 127).")
@click.option("--exclude-quality", "exclude_qualities", multiple=True, metavar="NAME",
              help="Drop notes with this NSynth quality, e.g. reverb (so dry means dry).")
@click.option("--notes-per-family", type=click.IntRange(min=1), default=None, metavar="N",
              help="Keep at most N notes of each instrument family, sampled with --seed "
                   "(programs, pitches and velocities alike), before --max-notes.")
@click.option("--max-notes", type=click.IntRange(min=1), default=None,
              help="Keep at most this many notes, sampled with --seed.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of sampling, splits and randomized parameters.")
@click.option("--valid-fraction", default=0.1, show_default=True,
              type=click.FloatRange(0, 1),
              help="Share of source notes (all their effects) in the valid split.")
@click.option("--test-fraction", default=0.1, show_default=True,
              type=click.FloatRange(0, 1),
              help="Share of source notes (all their effects) in the test split.")
@click.option("--records-per-shard", default=500, show_default=True,
              type=click.IntRange(min=1), help="About this many records per TFRecord shard.")
@click.option("--out", default=None, metavar="DIR",
              help="Output directory (default: $REVERBSYNTH_HOME/datasets/<effects>-<families>, "
                   "where 'reverbsynth train' looks).")
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in --out.")
@_progress_option
@click.pass_context
def build_dataset(ctx, progress, **options):
  """Render notes through effects into effect-labelled, sharded TFRecords.

  Any other option goes to Apache Beam, e.g. --runner DataflowRunner,
  --runner DaskRunner --dask_client_address ADDRESS, or --direct_num_workers 4.
  Example:

    reverbsynth build-dataset --effect reverb --family bass
  """
  from reverbsynth.data import manifest
  from reverbsynth.pipelines import build_dataset as pipeline
  pipeline.check_beam_args(ctx.args)
  plan = pipeline.BuildPlan.from_options(**options)
  local = not storage.is_remote(plan.out)
  if local:
    storage.check_writable_dir(plan.out, "--out")

  checked = (lambda: console.say("no --source given: rendering notes from the built-in "
                                 f"General MIDI SoundFont ({plan.source.path})")
             ) if options["source"] is None else (lambda: None)

  try:
    with storage.removed_on_error(plan.out) if local else contextlib.nullcontext():
      built, counters = pipeline.run(plan, ctx.args, progress=progress, on_checked=checked)
  except pipeline.PipelineFailed as e:
    raise Failure(e) from None
  click.echo(manifest.summary(built, plan.out, counters))


@cli.command("train", context_settings={"ignore_unknown_options": False})
@click.option("--config", "config_name", default=None, metavar="NAME|FILE",
              help="Training config: a YAML file or a name in configs/ (ddsp, reverbsynth, "
                   "gansynth, cpu, tiny). Default: the one that fits the machine: ddsp (16 kHz, "
                   "trains on a CPU) without a GPU, reverbsynth (the paper's) with one.")
@click.option("--data", default=None, type=_UserPath(), metavar="DIR",
              help="A built dataset. Default: the one build-dataset wrote last.")
@click.option("--out", default=None, type=_UserPath(), metavar="DIR",
              help="Run directory. Default: $REVERBSYNTH_HOME/runs/<config>-<dataset>.")
@click.option("--stages", default=None, type=click.IntRange(min=1),
              help="Train the first N stages (even = stable, odd = fade-in). Default: all.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--max-steps", default=None, type=click.IntRange(min=1),
              help="Stop after this many steps (a checkpoint is kept; --resume goes on).")
@click.option("--backend", default=None, type=click.Choice(["tensorflow", "jax"]),
              help="Keras backend to train on (train.backend). Default: the config's. A run "
                   "of either renders, evaluates and resumes under both.")
@_progress_option
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@_needs_train_extra
def train(config_name, data, out, stages, resume, max_steps, backend, progress, overrides):
  """Train a GAN (the ddsp or the progressive spectral generator) on a built dataset, stage
  by stage.

  KEY=VALUE pairs override config keys, e.g. schedule.images_per_stage=20000.
  Example:

    reverbsynth train --stages 8
  """
  from reverbsynth import backend as backends
  from reverbsynth.data import manifest
  from reverbsynth.runs import config as config_lib
  config_name = config_name or config_lib.fitting(backends.has_accelerator())
  config = config_lib.load(config_name, overrides + ((f"train.backend={backend}",)
                                                     if backend else ()))
  data = paths.dataset(data, "training on")
  manifest.read(data)  # A clear refusal before Keras and TensorFlow load (seconds).
  out = out or str(paths.default_run_dir(config.name, data))
  storage.check_writable_dir(out, "--out")
  backends.use(config.train.backend)  # Before Keras loads (with the training modules).
  from reverbsynth.model import schedule
  from reverbsynth.training import cost, loop as training
  stages = schedule.stages_to_train(stages, config.model.num_levels, config.name)
  cost.warn(config, stages)
  with storage.removed_on_error(out):
    trainer = training.Trainer(config, str(data), out, resume=resume)
  terms = trainer.train(stages, progress=progress, max_steps=max_steps)
  click.echo(trainer.report(stages, terms))


def _synthesizer(run):
  """The Synthesizer of --run, of the run 'reverbsynth train' exported last, or shipped."""
  from reverbsynth.runs import files
  from reverbsynth.synthesis import synthesizer
  return synthesizer.load(files.run_dir(run, "playing the generator of"))


@cli.command("generate")
@_run_option()
@click.option("--family", "families", multiple=True, metavar="NAME",
              help="Instrument family, repeatable, for a model conditioned on families "
                   "(model.conditions). Default: every family of the run.")
@click.option("--pitch", "pitches", multiple=True, type=int, metavar="MIDI",
              help="MIDI pitch, repeatable. Default: 36 48 60.")
@click.option("--effect", "effects", multiple=True, metavar="NAME",
              help="Effect label, repeatable, e.g. 'hall(room_size=0.95)'. Default: every "
                   "effect of the run.")
@click.option("--velocity", "velocities", multiple=True, type=click.IntRange(1, 127),
              help="MIDI velocity, repeatable: the nearest velocity label of a model "
                   "conditioned on velocity, else only loudness. Default: 100.")
@click.option("--seed", "seeds", multiple=True, type=int,
              help="One latent per seed, repeatable. Default: 0.")
@click.option("--latents", "latents_file", default=None, type=_UserPath(), metavar="FILE.npy",
              help="Latents [N, latent_size] to use instead of seeds.")
@click.option("--interpolate", default=None, type=click.IntRange(min=2), metavar="STEPS",
              help="Spherical interpolation in STEPS from the first latent to the second.")
@click.option("--save-latents", default=None, type=_UserPath(), metavar="FILE.npy",
              help="Write the latents used, to reuse with --latents.")
@click.option("--out", default="generated", type=_UserPath(), show_default=True, metavar="DIR",
              help="Directory for the notes' WAVs, named PITCH-EFFECT-vVELOCITY-zLATENT.wav "
                   "(FAMILY-PITCH-... for a model conditioned on families).")
@_bits_option
@click.option("--png", is_flag=True, help="Also write each note's spectrogram as PNG.")
@_needs_train_extra
def generate(run, out, **options):
  """Generate notes: every combination of family, pitch, effect, velocity and latent.

    reverbsynth generate --pitch 40 --effect dry --effect reverb --seed 1 --seed 2
  """
  from reverbsynth.synthesis import synthesizer
  storage.check_writable_dir(out, "--out")
  if options["save_latents"]:
    storage.check_writable_file(options["save_latents"], "--save-latents")
  click.echo(synthesizer.generate_files(_synthesizer(run), out,
                                        synthesizer.GenerateOptions(**options)))


@cli.command("render")
@click.argument("midi_file", type=_UserPath(exists=True, dir_okay=False))
@_run_option()
@click.option("--out", default=None, type=_UserPath(), metavar="FILE.wav",
              help="Output WAV. Default: the MIDI file's name with .wav, beside it.")
@click.option("--effect", "effects", multiple=True, metavar="[TRACK=]NAME",
              help="Effect for every track (NAME) or for some (TRACK=NAME, TRACK a number "
                   "from 1 or part of a track's name, program or class, e.g. bass=reverb or "
                   "bass='hall(room_size=0.95)'). Repeatable; 'dry' allowed. Default: the "
                   "run's first effect other than dry.")
@click.option("--family", "families", multiple=True, metavar="[TRACK=]NAME",
              help="Instrument family for every track (NAME) or for some (TRACK=NAME), for a "
                   "model conditioned on families. Repeatable. Default: each track's General "
                   "MIDI program's family, or the nearest one the model has.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the tracks' latents (timbres): the same seed, the same WAV.")
@click.option("--drums", is_flag=True, help="Play drum tracks too (skipped by default).")
@click.option("--sample-rate", default=None, type=click.IntRange(8000, 384000),
              help="Output rate (default: the model's, at least 16000: a 4 kHz model is "
                   "written at 16 kHz).")
@_bits_option
@click.option("--loudness", default=None, type=float, metavar="DBFS",
              help="Target RMS level in dBFS (peaks still stay below -1 dBFS).")
@click.option("--png", is_flag=True,
              help="Also write a picture beside the WAV: spectrogram over the notes played.")
@_progress_option
@_needs_train_extra
def render(midi_file, run, out, effects, families, seed, drums, sample_rate, bits, loudness,
           png, progress):
  """Play a MIDI file with the trained generator, every note through the learned effect.

    reverbsynth render song.mid --effect bass=reverb --effect dry
  """
  from reverbsynth.synthesis import songs
  out = out or os.path.splitext(midi_file)[0] + ".wav"
  storage.check_writable_file(out, "--out")
  tracks = songs.read(midi_file)  # A bad MIDI file is refused before the model loads.
  click.echo(songs.render_file(tracks, _synthesizer(run), out, songs.RenderOptions(
      effects=effects, families=families, seed=seed, drums=drums, sample_rate=sample_rate,
      bits=bits, loudness_db=loudness, png=png, progress=progress)))


@cli.command("apply")
@click.argument("in_file", type=_UserPath(exists=True, dir_okay=False))
@click.option("--effect", required=True, metavar="NAME",
              help="A learned effect of the run (one learned as a response: linear effects "
                   "such as reverb and delay).")
@_run_option("A run of the ddsp generator (or its generator/)")
@click.option("--out", default=None, type=_UserPath(), metavar="FILE.wav",
              help="Output WAV. Default: IN-EFFECT.wav beside the input.")
@_bits_option
@_needs_train_extra
def apply_effect(in_file, effect, run, out, bits):
  """Put a learned effect on any audio file (any rate and channels; the tail is kept).

    reverbsynth apply guitar.wav --effect reverb --out guitar-reverb.wav
  """
  from reverbsynth.synthesis import responses
  out = responses.output_path(in_file, effect, out)
  click.echo(responses.apply_file(_synthesizer(run), in_file, effect, out, bits))


@cli.command("evaluate")
@_run_option("A run directory")
@click.option("--data", default=None, type=_UserPath(), metavar="DIR",
              help="The dataset it was trained on (its test split is the real reference). "
                   "Default: the one build-dataset wrote last.")
@click.option("--out", default=None, type=_UserPath(), metavar="DIR",
              help="Report directory. Default: RUN/evaluation.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the latents.")
@click.option("--ndb-bins", default=50, show_default=True, type=click.IntRange(min=2),
              help="k-means bins of the NDB (number of statistically different bins) score.")
@click.option("--reference-notes", default=2000, show_default=True, type=click.IntRange(min=10),
              help="Training notes for the Frechet and NDB references.")
@click.option("--classifier-epochs", default=5, show_default=True, type=click.IntRange(min=1),
              help="Epochs to train the judge (the classifier of the run's labels) for.")
@click.option("--retrain-classifier", is_flag=True,
              help="Train the judge again instead of using the one cached in the dataset.")
@click.option("--per-stage", is_flag=True, help="Also score every stage checkpoint of the run.")
@_progress_option
@_needs_train_extra
def evaluate(run, data, out, **settings):
  """Score a run's notes against real held-out notes and write a report.

    reverbsynth evaluate --run RUN --data DATASET
  """
  from reverbsynth.evaluation import page, report, scores
  from reverbsynth.runs import files
  run, data = files.run_dir(run, "evaluating"), paths.dataset(data, "against")
  out = out or os.path.join(str(run), "evaluation")
  storage.check_writable_dir(out, "--out")
  if not settings["progress"]:
    logging.getLogger("reverbsynth").setLevel(logging.WARNING)
  result = scores.evaluate(str(run), str(data), scores.Settings(**settings))
  written = report.write(result, out)
  click.echo(report.summary(result, written, page.write(result, written, out)))


@cli.command("export")
@_run_option()
@click.option("--out", required=True, type=_UserPath(), metavar="DIR",
              help="Directory to write generator.json and the float16 weights into.")
@click.option("--prior-from", default=None, type=_UserPath(), metavar="DATA",
              help="Fit a ddsp generator's latent prior again, to DATA's dry training notes "
                   "(the dataset it was trained on; exports from before the prior play "
                   "from N(0, I)).")
@_needs_train_extra
def export(run, out, prior_from):
  """Write a run's generator compactly: float16 weights (half the size), playable anywhere.

    reverbsynth export --run RUN --out my-model && reverbsynth render song.mid --run my-model
  """
  from reverbsynth.errors import UserError
  from reverbsynth.model import latent_prior
  from reverbsynth.runs import files
  files.check_export_dir(out, "--out")
  synth = _synthesizer(run)
  if prior_from:
    if not synth.plays_audio:
      raise UserError("--prior-from: only a ddsp generator has a latent prior (fitted to its "
                      "encoder's posteriors); a spectral generator plays from N(0, I)")
    dry = latent_prior.dry_notes(prior_from, synth.config.audio, synth.labels)
    synth.latent_prior = latent_prior.fit_to_notes(synth.generator, dry)
  files.write_generator(out, synth, float16=True)
  click.echo(f"wrote {out}")


@cli.command("effects")
def list_effects():
  """List effect presets and types with their parameters."""
  from reverbsynth.data import effects as effects_lib
  click.echo(effects_lib.catalogue())


def run(args) -> int:
  """Runs the command line `args` in this process; returns its exit status (console.run)."""
  return console.run(cli, args)


def main(argv=None) -> None:
  """Entry point of the `reverbsynth` command."""
  console.main(cli, argv)

"""The `reverbsynth` command: one thin command per verb, the work done elsewhere."""

import contextlib
import functools
import importlib.util
import itertools
import logging
import os
import sys

import click

from reverbsynth import console, paths, storage
from reverbsynth.errors import Failure, UserError


def _echo_err(message: str) -> None:
  click.echo(f"reverbsynth: {message}", err=True)


def _latest(given, found, what: str, option: str, maker: str, doing: str):
  """`given`, else `found` (the newest dataset or run, said on stderr); UserError when none."""
  if given is not None:
    return given
  if found is None:
    raise UserError(f"no {what} under {paths.home()}: make one with 'reverbsynth {maker}', "
                    f"or give {option}")
  _echo_err(f"{doing} {found} (the latest {what}; {option} to choose)")
  return found


def _run_dir(run, doing: str):
  """--run, else the run 'reverbsynth train' exported last, else the generator shipped
  with the package (said on stderr)."""
  from reverbsynth.runs import files
  found = paths.latest_run()
  shipped = files.pretrained() if run is None and found is None else None
  if shipped:
    _echo_err(f"{doing} the model shipped with reverbsynth ({shipped}): no trained run under "
              f"{paths.home()} ('reverbsynth train' makes one; --run to choose)")
    return shipped
  return _latest(run, found, "trained run", "--run", "train", doing)


def _dataset(data, doing: str):
  return _latest(data, paths.latest_dataset(), "dataset", "--data", "build-dataset", doing)


class _UserPath(click.Path):
  """click.Path, given as the user means it: against the working directory, ~ expanded."""

  def convert(self, value, param, ctx):
    return super().convert(storage.resolve(value), param, ctx)


# What the `train` extra brings (import names): the verbs that run a model need all of it.
TRAIN_EXTRA = ("tensorflow", "keras", "jax", "tensorboard", "matplotlib")


def _needs_train_extra(command):
  """Refuses the command in one line, before any work, where the train extra is missing (as
  on a Beam worker's install, which builds datasets only)."""
  @functools.wraps(command)
  def checked(*args, **kwargs):
    missing = [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
      raise UserError(f"'reverbsynth {click.get_current_context().info_name}' needs the train "
                      f"extra ({', '.join(missing)} not installed): pip install "
                      "'reverbsynth[train]'")
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

  def checked():
    if options["source"] is None:
      _echo_err("no --source given: rendering notes from the built-in General MIDI "
                f"SoundFont ({plan.source.path})")

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
              help="Keras backend to train on (train.backend; default: the config's, "
                   "tensorflow). A run of either renders, evaluates and resumes under both.")
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
  from reverbsynth.runs import config as config_lib
  if config_name is None:
    config_name, why = config_lib.fitting(backends.has_accelerator())
    _echo_err(f"config {config_name}: {why}")
  config = config_lib.load(config_name, overrides + ((f"train.backend={backend}",)
                                                     if backend else ()))
  data = _dataset(data, "training on")
  out = out or str(paths.default_run_dir(config.name, data))
  storage.check_writable_dir(out, "--out")
  backends.use(config.train.backend)  # Before Keras loads (with the training modules).
  from reverbsynth.model import schedule
  from reverbsynth.training import cost, loop as training
  stages = schedule.stages_to_train(stages, config.model.num_levels, config.name)
  warning = cost.warning(config, stages)
  if warning:
    _echo_err(warning)
  with storage.removed_on_error(out):
    trainer = training.Trainer(config, str(data), out, resume=resume)
  terms = trainer.train(stages, progress=progress, max_steps=max_steps)
  click.echo(trainer.report(stages, terms))


def _synthesizer(run):
  """The Synthesizer of --run, of the run 'reverbsynth train' exported last, or shipped."""
  from reverbsynth.synthesis import synthesizer
  return synthesizer.load(_run_dir(run, "playing the generator of"))


@cli.command("generate")
@_run_option()
@click.option("--pitch", "pitches", multiple=True, type=int, metavar="MIDI",
              help="MIDI pitch, repeatable. Default: 36 48 60.")
@click.option("--effect", "effects", multiple=True, metavar="NAME",
              help="Effect label, repeatable, e.g. 'hall(room_size=0.95)'. Default: every "
                   "effect of the run.")
@click.option("--velocity", "velocities", multiple=True, type=click.IntRange(1, 127),
              help="MIDI velocity (loudness), repeatable. Default: 100.")
@click.option("--seed", "seeds", multiple=True, type=int,
              help="One latent per seed, repeatable. Default: 0.")
@click.option("--latents", "latents_file", default=None, type=_UserPath(), metavar="FILE.npy",
              help="Latents [N, latent_size] to use instead of seeds.")
@click.option("--interpolate", default=None, type=click.IntRange(min=2), metavar="STEPS",
              help="Spherical interpolation in STEPS from the first latent to the second.")
@click.option("--save-latents", default=None, type=_UserPath(), metavar="FILE.npy",
              help="Write the latents used, to reuse with --latents.")
@click.option("--out", default="generated", type=_UserPath(), show_default=True, metavar="DIR",
              help="Directory for the notes' WAVs, named PITCH-EFFECT-vVELOCITY-zLATENT.wav.")
@_bits_option
@click.option("--png", is_flag=True, help="Also write each note's spectrogram as PNG.")
@_needs_train_extra
def generate(run, pitches, effects, velocities, seeds, latents_file, interpolate,
             save_latents, out, bits, png):
  """Generate notes: every combination of pitch, effect, velocity and latent.

    reverbsynth generate --pitch 40 --effect dry --effect reverb --seed 1 --seed 2
  """
  import numpy as np

  from reverbsynth.synthesis import outputs, synthesizer
  storage.check_writable_dir(out, "--out")
  if save_latents:
    storage.check_writable_file(save_latents, "--save-latents")
  synth = _synthesizer(run)
  pitches, velocities = pitches or (36, 48, 60), velocities or (100,)
  effects = effects or synth.labels.effects
  z = synthesizer.choose_latents(synth, seeds, latents_file, interpolate)
  grid, audio = synthesizer.generate_grid(synth, pitches, effects, velocities, z)
  outputs.write_notes(grid, audio, synth.sample_rate, out, bits, png)
  if save_latents:
    with storage.atomic_path(save_latents) as tmp, open(tmp, "wb") as f:
      np.save(f, z)  # To the open file: given a name, np.save would add .npy to it.
  click.echo(f"{len(grid)} notes ({len(pitches)} pitches x {len(effects)} effects x "
             f"{len(velocities)} velocities x {len(z)} latents) in {out}")


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
def render(midi_file, run, out, effects, seed, drums, sample_rate, bits, loudness, png,
           progress):
  """Play a MIDI file with the trained generator, every note through the learned effect.

    reverbsynth render song.mid --effect bass=reverb --effect dry
  """
  from reverbsynth.synthesis import songs
  out = out or os.path.splitext(midi_file)[0] + ".wav"
  storage.check_writable_file(out, "--out")
  tracks = songs.read(midi_file)  # A bad MIDI file is refused before the model loads.
  plan, summary, image = songs.render_file(tracks, _synthesizer(run), out, songs.RenderOptions(
      effects=effects, seed=seed, drums=drums, sample_rate=sample_rate, bits=bits,
      loudness_db=loudness, png=png, progress=progress))
  for track in tracks:
    played = "skipped (drums; --drums plays them)" if track.is_drum and not drums \
        else plan[track.number]
    click.echo(f"  track {track.describe()}: {played}")
  click.echo(f"{out}: {summary.line()}")
  if image:
    click.echo(f"{image}: spectrogram and notes")


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
  from reverbsynth.synthesis import outputs, responses
  stem = os.path.splitext(in_file)[0]
  out = out or f"{stem}-{outputs.file_names([effect])[effect]}.wav"
  if os.path.abspath(out) == os.path.abspath(in_file):
    raise UserError(f"--out {out} is the input file: give another name")
  storage.check_writable_file(out, "--out")
  done = responses.apply_file(_synthesizer(run), in_file, effect, out, bits)
  click.echo(f"{out}: {done['seconds']:.2f} s at {done['rate']} Hz, {done['channels']} "
             f"channel(s), {done['tail_seconds']:.2f} s of tail"
             + (f", scaled {done['gain_db']:.1f} dB to stay below -1 dBFS"
                if done["gain_db"] < -0.05 else ""))


@cli.command("evaluate")
@_run_option("A run directory")
@click.option("--data", default=None, type=_UserPath(), metavar="DIR",
              help="The dataset it was trained on (its test split is the real reference). "
                   "Default: the one build-dataset wrote last.")
@click.option("--out", default=None, type=_UserPath(), metavar="DIR",
              help="Report directory. Default: RUN/scores.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the latents.")
@click.option("--ndb-bins", default=50, show_default=True, type=click.IntRange(min=2),
              help="k-means bins of the NDB (number of statistically different bins) score.")
@click.option("--reference-notes", default=2000, show_default=True, type=click.IntRange(min=10),
              help="Training notes for the Frechet and NDB references.")
@click.option("--classifier-epochs", default=5, show_default=True, type=click.IntRange(min=1),
              help="Epochs to train the judge (the pitch and effect classifier) for.")
@click.option("--retrain-classifier", is_flag=True,
              help="Train the judge again instead of using the one cached in the dataset.")
@click.option("--per-stage", is_flag=True, help="Also score every stage checkpoint of the run.")
@_progress_option
@_needs_train_extra
def evaluate(run, data, out, seed, ndb_bins, reference_notes, classifier_epochs,
             retrain_classifier, per_stage, progress):
  """Score a run's notes against real held-out notes and write a report.

    reverbsynth evaluate --run RUN --data DATASET
  """
  from reverbsynth.evaluation import page, report, scores
  run, data = _run_dir(run, "evaluating"), _dataset(data, "against")
  out = out or os.path.join(str(run), "evaluation")
  storage.check_writable_dir(out, "--out")
  settings = scores.Settings(seed=seed, ndb_bins=ndb_bins, reference_notes=reference_notes,
                             classifier_epochs=classifier_epochs, per_stage=per_stage,
                             retrain_classifier=retrain_classifier, progress=progress)
  if not progress:
    logging.getLogger("reverbsynth").setLevel(logging.WARNING)
  result = scores.evaluate(str(run), str(data), settings)
  written = report.write(result, out)
  listen = page.write(result, written, out)
  click.echo(report.table(result["rows"], result["synth"].labels.effects))
  click.echo(f"judge held-out accuracy: pitch {result['judge_accuracy']['pitch']:.1%}, "
             f"effect {result['judge_accuracy']['effect']:.1%}")
  click.echo(f"Report: {written['report.md']}; to listen: {listen}")


@cli.command("export")
@_run_option()
@click.option("--out", required=True, type=_UserPath(), metavar="DIR",
              help="Directory to write generator.json and the float16 weights into.")
@_needs_train_extra
def export(run, out):
  """Write a run's generator compactly: float16 weights (half the size), playable anywhere.

    reverbsynth export --run RUN --out my-model && reverbsynth render song.mid --run my-model
  """
  from reverbsynth.runs import files
  files.check_export_dir(out, "--out")
  files.write_generator(out, _synthesizer(run), float16=True)
  click.echo(f"wrote {out}")


@cli.command("effects")
def list_effects():
  """List effect presets and types with their parameters."""
  from reverbsynth.data import effects as effects_lib
  click.echo(effects_lib.catalogue())


def run(args) -> int:
  """Runs the command line `args` in this process; returns its exit status: 0 done, 2 refused
  (bad input), 1 failed through no fault of the user's, 130 interrupted. Each error is one
  line on stderr."""
  try:
    code = cli.main(args=list(args), prog_name="reverbsynth", standalone_mode=False)
  except click.UsageError as e:
    _echo_err(f"error: {e.format_message()} (see --help)")
    return 2
  except UserError as e:
    _echo_err(f"error: {e}")
    return 2
  except Failure as e:
    _echo_err(f"failed: {e}")
    return 1
  except (click.Abort, KeyboardInterrupt):
    _echo_err("interrupted")
    return 130
  return code if isinstance(code, int) else 0


def main(argv=None) -> None:
  """Entry point of the `reverbsynth` command: hides the libraries' native log lines unless
  --verbose comes before the command, runs it and exits with its status."""
  args = sys.argv[1:] if argv is None else list(argv)
  if "--verbose" not in itertools.takewhile(lambda a: a.startswith("-"), args):
    console.hide_native_logs()
  sys.exit(run(args))

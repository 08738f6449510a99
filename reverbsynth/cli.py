"""The `reverbsynth` command: one thin command per verb, the work done elsewhere."""

import logging
import os
import sys

import click

from reverbsynth.errors import UserError


def _echo_err(message: str) -> None:
  click.echo(f"reverbsynth: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reverbsynth", prog_name="reverbsynth")
def cli():
  """Learn audio effects with generative models.

  build-dataset renders notes through effects into TFRecords; see each
  command's --help.
  """


def _source(spec):
  """A NoteSource from --source: soundfont[:PATH], an NSynth TFRecord file /
  glob / directory, or an NSynth json/wav directory."""
  from reverbsynth.notes import nsynth, soundfont
  if spec is None:
    _echo_err("no --source given: rendering notes from the built-in General MIDI "
              f"SoundFont ({soundfont.default_soundfont()})")
    return soundfont.SoundFontSource()
  if spec == "soundfont" or spec.startswith("soundfont:"):
    return soundfont.SoundFontSource(spec.partition(":")[2] or None)
  from reverbsynth import storage
  if storage.exists(storage.join(spec, "examples.json")):
    return nsynth.JsonWavSource(spec)
  if not storage.exists(spec) and not nsynth.tfrecord_files(spec):
    raise UserError(f"source {spec!r} does not exist: give an NSynth .tfrecord file, "
                    "glob or directory, an NSynth json/wav directory, or soundfont[:PATH]")
  return nsynth.TFRecordSource(spec)


def _check_beam_args(args) -> None:
  """Extra arguments go to Beam; a name Beam does not know is a typo of ours."""
  from apache_beam.options.pipeline_options import PipelineOptions
  known = set(PipelineOptions([]).get_all_options(drop_default=False))
  for arg in args:
    if arg.startswith("--") and arg[2:].split("=", 1)[0] not in known:
      raise UserError(f"unknown option {arg.split('=', 1)[0]} (neither reverbsynth's "
                      "nor Beam's); see 'reverbsynth build-dataset --help'")


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
              help="Draw each effect parameter per note from its range (with --seed); "
                   "parameters fixed in the spec stay fixed.")
@click.option("--family", "families", multiple=True, metavar="NAME",
              help="Instrument family to keep, repeatable (bass, keyboard, ...).")
@click.option("--instrument-source", "sources", multiple=True, metavar="NAME",
              help="acoustic, electronic or synthetic; repeatable.")
@click.option("--pitch-min", default=24, show_default=True, type=int)
@click.option("--pitch-max", default=84, show_default=True, type=int)
@click.option("--velocity", "velocities", multiple=True, type=int,
              help="MIDI velocity to keep, repeatable (NSynth: 25 50 75 100 127).")
@click.option("--exclude-quality", "exclude_qualities", multiple=True, metavar="NAME",
              help="Drop notes with this NSynth quality, e.g. reverb (so dry means dry).")
@click.option("--max-notes", type=click.IntRange(min=1), default=None,
              help="Keep at most this many notes, sampled with --seed.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of sampling, splits and randomized parameters.")
@click.option("--valid-fraction", default=0.1, show_default=True,
              type=click.FloatRange(0, 1))
@click.option("--test-fraction", default=0.1, show_default=True,
              type=click.FloatRange(0, 1))
@click.option("--records-per-shard", default=500, show_default=True,
              type=click.IntRange(min=1))
@click.option("--out", default=None, metavar="DIR",
              help="Output directory (default: $REVERBSYNTH_HOME/datasets/<effects>-<families>, "
                   "where 'reverbsynth train' looks).")
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in --out.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.pass_context
def build_dataset(ctx, source, effects, keep_dry, randomize, families, sources,
                  pitch_min, pitch_max, velocities, exclude_qualities, max_notes,
                  seed, valid_fraction, test_fraction, records_per_shard, out,
                  overwrite, progress):
  """Render notes through effects into effect-labelled, sharded TFRecords.

  Any other option goes to Apache Beam, e.g. --runner DataflowRunner or
  --direct_num_workers 4. Example:

    reverbsynth build-dataset --effect reverb --family bass
  """
  from reverbsynth import effects as effects_lib, manifest, paths
  from reverbsynth.notes.filters import NoteFilter
  _check_beam_args(ctx.args)
  effects = effects or ("reverb",)
  note_filter = NoteFilter.from_names(families, sources, pitch_min, pitch_max,
                                      velocities, exclude_qualities)
  vocabulary = effects_lib.vocabulary(effects, keep_dry)
  if valid_fraction + test_fraction >= 1:
    raise UserError("--valid-fraction + --test-fraction must leave room for train (< 1)")
  if out is None:
    out = str(paths.default_dataset_dir(effects, families))
  elif "://" not in out:
    out = os.path.abspath(os.path.expanduser(out))
  from pipelines import build_dataset as pipeline
  plan = pipeline.BuildPlan(
      source=_source(source), note_filter=note_filter, effects=vocabulary, out=out,
      seed=seed, max_notes=max_notes, randomize=randomize,
      fractions=(("train", 1 - valid_fraction - test_fraction),
                 ("valid", valid_fraction), ("test", test_fraction)),
      records_per_shard=records_per_shard, overwrite=overwrite)
  built, counters = pipeline.run(plan, ctx.args, progress=progress)
  click.echo(manifest.summary(built, out, counters))


@cli.command("train", context_settings={"ignore_unknown_options": False})
@click.option("--config", "config_name", default=None, metavar="NAME|FILE",
              help="Training config: a YAML file or a name in configs/ (tiny, cpu, "
                   "reverbsynth, gansynth). Default: reverbsynth.")
@click.option("--data", default=None, metavar="DIR",
              help="A built dataset. Default: the one build-dataset wrote last.")
@click.option("--out", default=None, metavar="DIR",
              help="Run directory. Default: $REVERBSYNTH_HOME/runs/<config>-<dataset>.")
@click.option("--stages", default=None, type=click.IntRange(min=1),
              help="Train the first N stages (even = stable, odd = fade-in). Default: all.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--max-steps", default=None, type=click.IntRange(min=1),
              help="Stop after this many steps (a checkpoint is kept; --resume goes on).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
def train(config_name, data, out, stages, resume, max_steps, progress, overrides):
  """Train the progressive GAN on a built dataset, stage by stage.

  KEY=VALUE pairs override config keys, e.g. schedule.images_per_stage=20000.
  Example:

    reverbsynth train --stages 8
  """
  from reverbsynth import config as config_lib, paths
  config = config_lib.load(config_name, overrides)
  if data is None:
    data = paths.latest_dataset()
    if data is None:
      raise UserError(f"no dataset under {paths.home() / 'datasets'}: build one with "
                      "'reverbsynth build-dataset', or give --data")
    _echo_err(f"training on {data} (the latest dataset; --data to choose)")
  out = out or str(paths.default_run_dir(config["name"], data))
  from reverbsynth import cost, training
  from reverbsynth.model import schedule
  stages = stages or schedule.num_stages(config["model"]["num_levels"])
  warning = cost.warning(config, stages)
  if warning:
    _echo_err(warning)
  trainer = training.Trainer(config, str(data), out, resume=resume)
  terms = trainer.train(stages, progress=progress, max_steps=max_steps)
  click.echo(f"Run: {out}\n  stage {int(trainer.stage)} of {stages} done, "
             f"{int(trainer.images_total)} images, step {int(trainer.step)}"
             + (f"; d_loss {terms['d_loss']:.3f}, g_loss {terms['g_loss']:.3f}" if terms else "")
             + f"\n  generator  {os.path.join(out, 'generator')}"
             f"\n  samples    {os.path.join(out, 'samples')}"
             f"\n  tensorboard --logdir {os.path.join(out, 'logs')}")


@cli.command("effects")
def list_effects():
  """List effect presets and types with their parameters."""
  from reverbsynth import effects as effects_lib
  presets = effects_lib.load_presets()
  click.echo("Presets (configs/effects.yaml):")
  for name, preset in presets.items():
    params = ", ".join(f"{k}={v}" for k, v in preset.get("params", {}).items())
    click.echo(f"  {name:<14} {preset['type']:<14} {params}")
  click.echo("Types and parameter ranges (for --randomize):")
  for name, kind in effects_lib.TYPES.items():
    ranges = ", ".join(f"{k} {lo:g}..{hi:g}" for k, (lo, hi) in kind.ranges.items())
    click.echo(f"  {name:<14} {ranges}")


class _DropNoise(logging.Filter):
  """Drops a warning Beam logs at import on every machine without GCP extras."""

  def filter(self, record):
    return not record.getMessage().startswith("apitools not found")


def main(argv=None) -> None:
  """Entry point: bad input is one line on stderr and exit status 2."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow C++ info logs after start-up.
  logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
  for handler in logging.getLogger().handlers:
    handler.addFilter(_DropNoise())
  try:
    code = cli.main(args=argv, prog_name="reverbsynth", standalone_mode=False)
  except click.UsageError as e:
    _echo_err(f"error: {e.format_message()} (see --help)")
    sys.exit(2)
  except UserError as e:
    _echo_err(f"error: {e}")
    sys.exit(2)
  except (click.Abort, KeyboardInterrupt):
    _echo_err("interrupted")
    sys.exit(130)
  sys.exit(code if isinstance(code, int) else 0)

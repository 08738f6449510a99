r"""Beam pipeline: notes -> filter -> effects -> effect-labelled sharded TFRecords.

    partitions -> refs (metadata) -> filter -> [sample --notes-per-family, --max-notes]
    -> reshuffle
    -> load audio -> conform -> effects -> encode -> split -> shards + manifest.json

Runs wherever Beam runs. Locally (the default) it uses every core in separate
processes; on Dataflow, Flink or Spark, pass that runner's options:

    python -m reverbsynth build-dataset --effect reverb --family bass \
        --out gs://bucket/reverb-bass --runner DataflowRunner --project P \
        --region R --temp_location gs://bucket/tmp \
        --extra_package dist/reverbsynth-0.1.0.tar.gz

Options are those of `reverbsynth build-dataset`; unknown ones go to Beam.
"""

import collections
import contextlib
import dataclasses
import importlib
import logging
import os
import sys
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

import reverbsynth
from reverbsynth import paths, storage
from reverbsynth.data import effects as effects_lib, manifest as manifest_lib, records
from reverbsynth.data.notes import nsynth, soundfont
from reverbsynth.data.notes.filters import NoteFilter
from reverbsynth.data.notes.note import NUM_SAMPLES, SAMPLE_RATE, conform
from reverbsynth.data.notes.sources import NoteSource, SkipNote, Skipped
from reverbsynth.errors import UserError
from reverbsynth.pipelines import sharded_sink
from reverbsynth.progress import Progress

NAMESPACE = "reverbsynth"
SKIPPED_EXAMPLES = 20
MAIN, LOG = "main", "log"  # What a step's outcomes are tagged with (_branches).


@dataclasses.dataclass
class BuildPlan:
  """Everything a build needs, validated; picklable for Beam workers."""
  source: NoteSource
  note_filter: NoteFilter
  effects: list  # [Effect], label order.
  out: str
  seed: int = 0
  notes_per_family: int | None = None
  max_notes: int | None = None
  randomize: bool = False
  fractions: tuple = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
  records_per_shard: int = 500
  overwrite: bool = False

  @classmethod
  def from_options(cls, *, source, effects, keep_dry, randomize, families, sources, pitch_min,
                   pitch_max, velocities, exclude_qualities, notes_per_family, max_notes, seed,
                   valid_fraction, test_fraction, records_per_shard, out,
                   overwrite) -> "BuildPlan":
    """The plan of `reverbsynth build-dataset`'s options (each as its --option); UserError
    on a bad one. `out` None: the default dataset directory of the effects and families."""
    effects = effects or ("reverb",)
    note_filter = NoteFilter.from_names(families, sources, pitch_min, pitch_max,
                                        velocities, exclude_qualities)
    vocabulary = effects_lib.vocabulary(effects, keep_dry)
    if valid_fraction + test_fraction >= 1:
      raise UserError("--valid-fraction + --test-fraction must leave room for train (< 1)")
    out = storage.resolve(out) if out else str(paths.default_dataset_dir(effects, families))
    return cls(source=source_from_spec(source), note_filter=note_filter, effects=vocabulary,
               out=out, seed=seed, notes_per_family=notes_per_family, max_notes=max_notes,
               randomize=randomize,
               fractions=(("train", 1 - valid_fraction - test_fraction),
                          ("valid", valid_fraction), ("test", test_fraction)),
               records_per_shard=records_per_shard, overwrite=overwrite)

  def header(self) -> dict:
    """The manifest's description of the inputs and settings."""
    return {
        "format": manifest_lib.FORMAT,
        "reverbsynth_version": reverbsynth.__version__,
        "source": self.source.describe(),
        "filters": self.note_filter.describe(),
        "notes_per_family": self.notes_per_family,
        "max_notes": self.max_notes,
        "seed": self.seed,
        "randomize": self.randomize,
        "splits": dict(self.fractions),
        "effects": [dict(e.describe(), id=i, param_names=e.param_names())
                    for i, e in enumerate(self.effects)],
        "audio": {"sample_rate": SAMPLE_RATE, "num_samples": NUM_SAMPLES},
    }


def _branches(outcomes, label: str) -> tuple:
  """(main, log) PCollections of a step's (MAIN | LOG, value) outcomes.

  Each step has one output and the branches are filters of it, which every runner reads
  alike: Beam's DaskRunner (2.77) sends every output of a multi-output ParDo
  (`with_outputs`) to the tagged one.
  """
  keep = lambda tag: lambda outcome: [outcome[1]] if outcome[0] == tag else []
  return (outcomes | f"{label}Main" >> beam.FlatMap(keep(MAIN)),
          outcomes | f"{label}Log" >> beam.FlatMap(keep(LOG)))


class ReadRefs(beam.DoFn):
  """partition -> (MAIN, note ref) (no audio), (LOG, event) for unreadable or filtered ones."""

  def __init__(self, source: NoteSource, note_filter: NoteFilter):
    self.source = source
    self.note_filter = note_filter
    self.read = Metrics.counter(NAMESPACE, "read")
    self.filtered = Metrics.counter(NAMESPACE, "filtered")
    self.skipped = Metrics.counter(NAMESPACE, "skipped")

  def process(self, partition):
    for item in self.source.refs(partition):
      if isinstance(item, Skipped):
        self.skipped.inc()
        yield LOG, ("skipped", item.reason, item.what)
        continue
      self.read.inc()
      reason = self.note_filter.rejection(item.note)
      if reason:
        self.filtered.inc()
        yield LOG, ("filtered", reason, "")
      else:
        yield MAIN, item


class LoadNote(beam.DoFn):
  """ref -> (MAIN, Note with audio float32 [64000] at 16 kHz); (LOG, event) for failures
  and conforming changes."""

  def __init__(self, source: NoteSource):
    self.source = source
    self.skipped = Metrics.counter(NAMESPACE, "skipped")

  def process(self, ref):
    try:
      audio, rate = self.source.load(ref)
      audio, changes = conform(audio, rate)
      if not np.isfinite(audio).all():
        raise SkipNote("non-finite audio")
    except SkipNote as e:
      self.skipped.inc()
      yield LOG, ("skipped", str(e), ref.note.note_str)
      return
    for change in changes:
      yield LOG, ("conformed", change, "")
    yield MAIN, ref.note.with_audio(audio, SAMPLE_RATE)


class RenderRecords(beam.DoFn):
  """Note -> (MAIN, record) per effect, a record (sort_key, source, effect, labels (the
  values of sharded_sink.COUNTED), peak, bytes); (LOG, event) for an effect whose output is
  not finite."""

  def __init__(self, effects: list, seed: int, randomize: bool):
    self.effects = effects
    self.seed = seed
    self.randomize = randomize

  def setup(self):
    self.skipped = Metrics.counter(NAMESPACE, "skipped")
    self.written = {e.name: Metrics.counter(NAMESPACE, f"written[{e.name}]")
                    for e in self.effects}

  def process(self, note):
    for effect_id, effect in enumerate(self.effects):
      values = effect.params(self.randomize, self.seed, note.note_str)
      audio = effect.apply(note.audio, values)
      if not np.isfinite(audio).all():
        self.skipped.inc()
        yield LOG, ("skipped", f"non-finite output of {effect.name}", note.note_str)
        continue
      data = records.encode(note, effect_id, effect.name, effect.param_names(),
                            values, audio)
      self.written[effect.name].inc()
      labels = (note.pitch, note.instrument_family_str, note.velocity, note.instrument_str)
      yield MAIN, ((note.note_str, effect_id), note.note_str, effect_id, labels,
                   float(np.abs(audio).max()), data)


def _rank(seed: int):
  return lambda ref: sharded_sink.unit_hash("sample", seed, ref.note.note_str)


def build(p: beam.Pipeline, plan: BuildPlan, staging: str) -> None:
  """Adds the dataset graph to `p`: shards and a summary of them in `staging`."""
  selected, refs_log = _branches(
      p
      | "Partitions" >> beam.Create(plan.source.partitions())
      | "SpreadPartitions" >> beam.Reshuffle()
      | "ReadAndFilter" >> beam.ParDo(ReadRefs(plan.source, plan.note_filter)), "Refs")
  if plan.notes_per_family:
    selected = (selected
                | "KeyByFamily" >> beam.Map(lambda ref: (ref.note.instrument_family, ref))
                | "SamplePerFamily" >> beam.combiners.Top.PerKey(plan.notes_per_family,
                                                                key=_rank(plan.seed))
                | "UnpackFamilies" >> beam.FlatMap(lambda family_refs: family_refs[1]))
  if plan.max_notes:
    selected = (selected
                | "Sample" >> beam.combiners.Top.Of(plan.max_notes, key=_rank(plan.seed))
                | "Unpack" >> beam.FlatMap(lambda refs: refs))
  num_notes = beam.pvalue.AsSingleton(selected | "CountNotes" >> beam.combiners.Count.Globally())
  notes, notes_log = _branches(
      selected
      | "SpreadNotes" >> beam.Reshuffle()
      | "Load" >> beam.ParDo(LoadNote(plan.source)), "Notes")
  rendered, rendered_log = _branches(
      notes | "Effects" >> beam.ParDo(RenderRecords(plan.effects, plan.seed, plan.randomize)),
      "Records")
  shards = (rendered
            | "WriteParts" >> beam.ParDo(sharded_sink.WriteParts(
                staging, plan.seed, plan.fractions, plan.records_per_shard,
                len(plan.effects)), num_notes)
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(sharded_sink.WriteShard(staging))
            | "AllShards" >> beam.combiners.ToList())
  log = (refs_log, notes_log, rendered_log) | "Log" >> beam.Flatten()
  events = (log
            | "EventKeys" >> beam.Map(lambda e: (e[0], e[1]))
            | "CountEvents" >> beam.combiners.Count.PerElement())
  skipped = (log
             | "SkippedOnly" >> beam.Filter(lambda e: e[0] == "skipped")
             | "SkippedPairs" >> beam.Map(lambda e: (e[2], e[1]))
             | "SkippedExamples" >> beam.combiners.Top.Smallest(SKIPPED_EXAMPLES))
  shards | "Summarize" >> beam.ParDo(
      sharded_sink.WriteSummary(staging), beam.pvalue.AsList(events),
      beam.pvalue.AsSingleton(skipped), num_notes)


def source_from_spec(spec) -> NoteSource:
  """A NoteSource from --source: soundfont[:PATH], an NSynth TFRecord file /
  glob / directory, or an NSynth json/wav directory (local paths against the
  working directory, ~ expanded)."""
  if spec is None:
    return soundfont.SoundFontSource()
  if spec == "soundfont" or spec.startswith("soundfont:"):
    path = spec.partition(":")[2]
    return soundfont.SoundFontSource(storage.resolve(path) if path else None)
  spec = storage.resolve(spec)
  if storage.exists(storage.join(spec, "examples.json")):
    return nsynth.JsonWavSource(spec)
  if not storage.exists(spec) and not nsynth.tfrecord_files(spec):
    raise UserError(f"source {spec!r} does not exist: give an NSynth .tfrecord file, "
                    "glob or directory, an NSynth json/wav directory, or soundfont[:PATH]")
  return nsynth.TFRecordSource(spec)


# Runners by the short names reverbsynth gives them (Beam knows them by module path only),
# with the extra that installs what they need.
RUNNERS = {"DaskRunner": ("reverbsynth.pipelines.dask_runner.DaskRunner", "dask")}


def _runner_named(args) -> list:
  """Beam arguments with a short --runner name of RUNNERS spelled out, and that runner's
  options registered with Beam (its module imported); UserError if it is not installed."""
  args = list(args)
  for i, arg in enumerate(args):
    if arg == "--runner" and i + 1 < len(args):
      at, name = i + 1, args[i + 1]
    elif arg.startswith("--runner="):
      at, name = i, arg.split("=", 1)[1]
    else:
      continue
    if name in RUNNERS:
      path, extra = RUNNERS[name]
      try:
        importlib.import_module(path.rsplit(".", 1)[0])
      except ImportError as e:
        raise UserError(f"--runner {name} needs {e.name}: pip install 'reverbsynth[{extra}]'"
                        ) from None
      args[at] = path if at > i else f"--runner={path}"
    break
  return args


def check_beam_args(args) -> None:
  """Extra arguments go to Beam: one it does not know, or a bad value, is refused here."""
  args = _runner_named(args)
  parsers = []
  PipelineOptions([]).get_all_options(add_extra_args_fn=parsers.append)

  def refuse(message):
    raise UserError(f"bad Beam option: {message}; see 'reverbsynth build-dataset --help'")

  parsers[0].error = refuse  # argparse would print its usage and exit.
  _, unknown = parsers[0].parse_known_args(list(args))
  if unknown and unknown[0].startswith("-"):
    raise UserError(f"unknown option {unknown[0].split('=', 1)[0]} (neither reverbsynth's "
                    "nor Beam's); see 'reverbsynth build-dataset --help'")
  if unknown:
    raise UserError(f"unexpected argument {unknown[0]!r}: build-dataset takes options only; "
                    "see 'reverbsynth build-dataset --help'")


def pipeline_options(beam_args) -> PipelineOptions:
  """Beam options; locally, every core in separate processes, nothing downloaded."""
  args = _runner_named(beam_args)
  given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
  if "--runner" not in given:
    args.append("--runner=DirectRunner")
  runner = PipelineOptions(args).get_all_options()["runner"] or "DirectRunner"
  if runner in ("DirectRunner", "direct"):
    # Named explicitly, the DirectRunner runs in Python and never fetches Prism.
    if "--direct_running_mode" not in given:
      args.append("--direct_running_mode=multi_processing")
    if "--direct_num_workers" not in given:
      args.append(f"--direct_num_workers={os.cpu_count() or 1}")
  if "--default_sdk_harness_log_level" not in given:
    args.append("--default_sdk_harness_log_level=WARNING")
  return PipelineOptions(args)


class PipelineFailed(Exception):
  """The pipeline failed through no fault of the user's; the message is one line naming the log."""


@contextlib.contextmanager
def _stderr_to(log_fd: int):
  """Sends file descriptor 2 (this process's and its workers') and Beam's Python log lines
  to `log_fd`.

  Yields a writable stream on Python's stderr, for the progress bar: the real stderr, where
  file descriptor 2 may be the CLI's filter of native log lines (a pipe, not a terminal).
  """
  sys.stderr.flush()
  try:
    shown = sys.stderr.fileno()
  except (AttributeError, OSError, ValueError):  # A captured stderr (io.UnsupportedOperation).
    shown = 2
  terminal = os.fdopen(os.dup(shown), "w")
  saved = os.dup(2)
  os.dup2(log_fd, 2)
  beam = logging.getLogger("apache_beam")
  to_log = logging.StreamHandler(os.fdopen(os.dup(log_fd), "w"))
  beam.addHandler(to_log)
  beam.propagate = False
  try:
    yield terminal
  finally:
    beam.removeHandler(to_log)
    beam.propagate = True
    to_log.stream.close()
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    terminal.close()


class _Progress:
  """Shows records written while the pipeline runs, from the writers' progress files: a bar
  on a terminal, one summary line in a log (progress.Progress)."""

  def __init__(self, staging: str, total: int | None, stream):
    self.directory = os.path.join(staging, sharded_sink.PROGRESS_DIR)
    self.total = total
    self.stream = stream
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _count(self) -> int:
    done = 0
    for name in os.listdir(self.directory) if os.path.isdir(self.directory) else ():
      if not name.startswith("."):  # A file being written (storage.atomic_path).
        try:
          with open(os.path.join(self.directory, name)) as f:
            done += int(f.read() or 0)
        except (OSError, ValueError):
          pass
    return done

  def _run(self):
    while not self._stop.wait(0.5):
      self._update()

  def _update(self):
    self._bar.update(max(0, self._count() - self._bar.count))

  def __enter__(self):
    self._bar = Progress(True, self.total, "record", "build-dataset", stream=self.stream)
    self._thread.start()
    return self

  def __exit__(self, *exc):
    """The last count, and the summary line in a log, only when the pipeline succeeded."""
    self._stop.set()
    self._thread.join()
    if exc[0] is None:
      self._update()
    self._bar.__exit__(*exc)


def _expected_records(plan: BuildPlan) -> int | None:
  """Records the build will write, when refs can be listed cheaply (not TFRecords)."""
  if not plan.source.lists_refs_cheaply:
    return None
  per_family = collections.Counter(
      ref.note.instrument_family for part in plan.source.partitions()
      for ref in plan.source.refs(part)
      if not isinstance(ref, Skipped) and not plan.note_filter.rejection(ref.note))
  if not per_family:
    raise UserError(f"the filters select no notes from {plan.source.describe()['path']}: "
                    "widen --family/--pitch-min/--pitch-max/--velocity/--instrument-source")
  kept = sum(min(n, plan.notes_per_family or n) for n in per_family.values())
  return min(kept, plan.max_notes or kept) * len(plan.effects)


def _beam_pipeline(beam_args) -> beam.Pipeline:
  try:
    return beam.Pipeline(options=pipeline_options(beam_args))
  except ValueError as e:  # An unknown --runner.
    raise UserError(f"Beam refused the options: {e}") from None


def _quiet_beam_logs():
  for name in ("apache_beam", "absl", "distributed"):
    logging.getLogger(name).setLevel(logging.ERROR)


def counters(result) -> dict:
  """Beam counters of a finished run: {name: value}."""
  out = {}
  try:
    for c in result.metrics().query()["counters"]:
      if c.key.metric.namespace == NAMESPACE:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + (c.committed or c.attempted or 0)
  except (NotImplementedError, AttributeError, KeyError):
    pass
  return out


def run(plan: BuildPlan, beam_args=(), progress: bool = True,
        on_checked: Callable[[], None] = lambda: None) -> tuple:
  """Builds the dataset; returns (manifest, Beam counters).

  Every input is checked first, a bad one a UserError before anything is
  written; then `on_checked` is called. After the pipeline, TFRecord notes that
  the filters all dropped are a UserError too; a failure of the pipeline itself
  is PipelineFailed, which keeps the Beam log (a private temporary file, else
  removed). On any error the staging folder goes and a dataset already in `out`
  stays as it was; `out` itself, if the build made it, is the caller's to remove.
  """
  if manifest_lib.exists(plan.out) and not plan.overwrite:
    raise UserError(f"{plan.out} already holds a dataset: give --overwrite to "
                    "replace it, or another --out")
  plan.source.partitions()  # Reads every input's index (kept): refuses corrupt files.
  expected = _expected_records(plan)
  p = _beam_pipeline(beam_args)
  on_checked()
  staging = FileSystems.join(plan.out, f".staging-{uuid.uuid4().hex[:12]}")
  log_fd, log_path = tempfile.mkstemp(prefix="reverbsynth-beam-", suffix=".log")
  keep_log = False
  _quiet_beam_logs()
  try:
    try:
      FileSystems.mkdirs(staging)
      build(p, plan, staging)
      with _stderr_to(log_fd) as terminal:
        with _Progress(staging, expected, terminal) if progress else contextlib.nullcontext():
          result = p.run()
          result.wait_until_finish()
      built = sharded_sink.commit(plan.out, staging, plan.header(),
                                  [e.name for e in plan.effects],
                                  [name for name, _ in plan.fractions], plan.overwrite)
    except Exception as e:
      keep_log = True
      with os.fdopen(os.dup(log_fd), "a") as log:
        traceback.print_exc(file=log)
      last = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
      raise PipelineFailed(f"in the pipeline: {last[-1].strip()} (Beam log: {log_path})"
                           ) from None
    if built is None:
      raise UserError("the filters selected no notes from "
                      f"{plan.source.describe()['path']}: widen them")
  finally:
    os.close(log_fd)
    if FileSystems.exists(staging):
      FileSystems.delete([staging])
    if not keep_log:
      os.remove(log_path)
  return built, counters(result)


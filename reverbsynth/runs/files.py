"""The files of a run directory: what training writes and synthesis, evaluation and resumes read.

  config.yaml       the resolved training config
  labels.json       the label vocabularies (data.labels.Labels)
  normalizer.json   the spectra's normalizer (spectral.Normalizer)
  generator/        the exported generator: generator.json (config, labels, normalizer, the
                    level it plays at and, for ddsp, the latent prior it is played from) and
                    its weights, float32 .weights.h5 or float16 .npz
  checkpoints/      latest.npz (every few minutes) and stage-NN.npz (each finished stage):
                    every weight of G, D, the EMA generator and both Adams, and the counters,
                    as plain arrays, so that either Keras backend resumes a run of the other

(logs/ and samples/ belong to the training loop.)
"""

import dataclasses
import logging
import os
import typing

import numpy as np
import yaml

from reverbsynth import paths, spectral, storage
from reverbsynth.data.labels import Labels
from reverbsynth.errors import UserError
from reverbsynth.model import ddsp, networks
from reverbsynth.model.latent_prior import LatentPrior
from reverbsynth.runs.config import Config

CONFIG = "config.yaml"
LABELS = "labels.json"
NORMALIZER = "normalizer.json"
GENERATOR_DIR = "generator"
GENERATOR_JSON = "generator.json"
WEIGHTS = "generator.weights.h5"
COMPACT_WEIGHTS = "generator.float16.npz"  # In generator.weights order.
EXPORT_FILES = {GENERATOR_JSON, WEIGHTS, COMPACT_WEIGHTS}
CHECKPOINTS = "checkpoints"
LATEST = "latest"
COUNTERS = ("step", "stage", "images_in_stage", "images_total")
# The generator shipped with the package (a compact export of a cpu run; the README says how).
PRETRAINED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "pretrained")


def model_config(config: Config, labels: Labels):
  """The network shapes of a training config (networks.ModelConfig or ddsp.DdspConfig, by
  model.generator), with its label vocabularies' sizes."""
  if config.model.generator == "ddsp":
    return ddsp.DdspConfig.from_config(config, labels.num_pitches, len(labels.effects),
                                       labels.dry_ids, labels.sizes[2:])
  return networks.ModelConfig.from_config(config.model, labels.num_pitches,
                                         len(labels.effects))


def new_generator(model_config, **kwargs):
  """A generator of `model_config`'s family with every layer built."""
  if isinstance(model_config, ddsp.DdspConfig):
    generator = ddsp.DdspGenerator(model_config, **kwargs)
    ddsp.build_generator(generator)
  else:
    generator = networks.Generator(model_config, **kwargs)
    networks.build_generator(generator)
  return generator


def identity_normalizer() -> spectral.Normalizer:
  """What a generator of audio (ddsp) stores as its normalizer: spectra left as they are."""
  return spectral.Normalizer((1.0, 1.0), (0.0, 0.0))


def start(run_dir, config: Config, labels: Labels, resume: bool) -> None:
  """Writes a new run's config and labels; for `resume`, checks that the run's match."""
  labels_path = os.path.join(run_dir, LABELS)
  if not os.path.exists(labels_path):
    storage.write_text(os.path.join(run_dir, CONFIG),
                       yaml.safe_dump(config.to_dict(), sort_keys=False))
    storage.write_json(labels_path, labels.to_json())
    return
  if not resume:
    raise UserError(f"{run_dir} already holds a run: give --resume to continue it, "
                    "or another --out")
  saved = Labels.from_json(storage.read_json(labels_path))
  if saved != labels:
    raise UserError(f"the dataset's labels {list(labels.effects)} (pitches from "
                    f"{labels.pitch_min}) do not match the run's {list(saved.effects)} "
                    f"(from {saved.pitch_min}): resume with the dataset it was trained on")
  with open(os.path.join(run_dir, CONFIG)) as f:
    trained = yaml.safe_load(f)
  sections = config.to_dict()
  changed = [k for k in ("audio", "spectral", "model") if trained.get(k) != sections[k]]
  if changed:
    raise UserError(f"{run_dir} was trained with other {', '.join(changed)} settings "
                    "than this config's (an older config?): give another --out, or remove "
                    "that run to start it again")


def checkpoint_path(run_dir, name: str) -> str:
  """checkpoints/<name>.npz of a run (name: latest, or stage-NN)."""
  return os.path.join(run_dir, CHECKPOINTS, f"{name}.npz")


def weights_by_path(network) -> dict:
  """{path: weight} of `network.weights`, in their order, each path by attribute names from
  the network down, e.g.
  "convs/1/0/kernel": the same in every process (Keras's own variable paths carry
  process-wide counters: "equalized_dense_6/variable_44" in one process is
  "equalized_dense/variable" in another). ValueError where a weight has none."""
  import keras
  found: dict = {}
  seen: set = set()

  def walk(node, path: str) -> None:
    if isinstance(node, keras.Variable):
      found.setdefault(id(node), path)
      return
    if isinstance(node, keras.layers.Layer):
      if id(node) in seen:
        return
      seen.add(id(node))
      items = [(k, v) for k, v in vars(node).items() if not k.startswith("_")]
    elif isinstance(node, (list, tuple, dict)):
      items = list(node.items() if isinstance(node, dict) else enumerate(node))
    else:
      return
    for key, value in items:
      walk(value, f"{path}/{key}" if path else str(key))

  walk(network, "")
  if any(id(v) not in found for v in network.weights):
    raise ValueError(f"{network.name}: a weight held by no public attribute")
  return {found[id(v)]: v for v in network.weights}


def adam_paths(adam, network) -> list:
  """The path of each of `adam.variables` (an Adam built on `network`'s trainable weights):
  iteration, learning_rate, then each weight's path (weights_by_path) + /momentum and
  /velocity, in Adam's order."""
  paths = {id(v): path for path, v in weights_by_path(network).items()}
  out = ["iteration", "learning_rate"] + [f"{paths[id(v)]}/{slot}"
                                          for v in network.trainable_variables
                                          for slot in ("momentum", "velocity")]
  names = [v.name for v in adam.variables]
  if len(names) != len(out) or any(not n.endswith(o.rsplit("/", 1)[-1])
                                   for n, o in zip(names, out)):
    raise ValueError(f"{network.name}: Adam's variables do not follow its weights' order")
  return out


def write_checkpoint(path, groups: dict, counters: dict) -> None:
  """Writes {group: {path: array}} (generator, discriminator, ema, g_opt, d_opt: weights by
  weights_by_path and adam_paths) and {counter: int} (COUNTERS) as one .npz, atomically."""
  arrays: dict[str, typing.Any] = {f"{group}/{key}": np.asarray(value)
                                   for group, values in groups.items()
                                   for key, value in values.items()}
  arrays.update({f"counters/{name}": np.int64(counters[name]) for name in COUNTERS})
  with storage.atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, **arrays)


def read_checkpoint(path) -> tuple:
  """({group: {path: array}}, {counter: int}) of a checkpoint written by write_checkpoint, in
  the order written."""
  groups: dict[str, dict] = {}
  counters: dict[str, int] = {}
  with np.load(path) as data:
    for key in data.files:
      group, name = key.split("/", 1)
      if group == "counters":
        counters[name] = int(data[key])
      else:
        groups.setdefault(group, {})[name] = data[key]
  return groups, counters


def matched(group: str, variables: dict, arrays: dict) -> list:
  """[(variable, array)] for a checkpoint group's {path: variable} and {path: array}; a
  checkpoint from before paths ("0000", "0001", ...) by position. ValueError naming the
  first path missing, unknown or of another shape."""
  if arrays and all(key.isdigit() for key in arrays) and len(arrays) == len(variables):
    arrays = dict(zip(variables, arrays.values()))
  for path in [*variables, *arrays]:
    if path not in arrays or path not in variables:
      where = "missing from the checkpoint" if path not in arrays else "not in the model"
      raise ValueError(f"{group}/{path} is {where}")
    if tuple(variables[path].shape) != arrays[path].shape:
      raise ValueError(f"{group}/{path} has shape {arrays[path].shape}, the model's "
                       f"{tuple(variables[path].shape)}")
  return [(variables[path], arrays[path]) for path in variables]


def stage_checkpoints(run_dir) -> list:
  """[(stage index, path)] of a run's stage checkpoints, in order."""
  directory = os.path.join(run_dir, CHECKPOINTS)
  names = sorted(f for f in os.listdir(directory) if f.startswith("stage-")
                 and f.endswith(".npz")) if os.path.isdir(directory) else []
  return [(int(name[len("stage-"):-len(".npz")]), os.path.join(directory, name))
          for name in names]


def read_normalizer(run_dir):
  """The run's normalizer, or None before training has computed it."""
  path = os.path.join(run_dir, NORMALIZER)
  return spectral.Normalizer.from_json(storage.read_json(path)) if os.path.exists(path) else None


def write_normalizer(run_dir, normalizer: spectral.Normalizer) -> None:
  storage.write_json(os.path.join(run_dir, NORMALIZER), normalizer.to_json())


@dataclasses.dataclass
class Exported:
  """A generator with all it needs to play: its config, labels, normalizer, level and the
  prior its latents are drawn from (None: N(0, I))."""
  generator: "networks.Generator | ddsp.DdspGenerator"
  config: Config
  labels: Labels
  normalizer: spectral.Normalizer
  level: int
  latent_prior: LatentPrior | None = None


def check_export_dir(path: str, option: str) -> None:
  """UserError unless `path` can take an export: writable, and holding nothing but an
  earlier export (the directory is replaced as a whole)."""
  storage.check_writable_dir(path, option)
  foreign = set(os.listdir(path) if os.path.isdir(path) else ()) - EXPORT_FILES
  if foreign:
    raise UserError(f"{option} {path} holds other files ({sorted(foreign)[0]}, ...); export "
                    "replaces the directory as a whole: give a new or empty one")


def write_generator(directory, exported: Exported, float16: bool = False) -> None:
  """Writes `exported` as `directory` (replaced as a whole): generator.json and the weights,
  float32 .weights.h5, or float16 .npz (half the size; still computed in float32)."""
  with storage.atomic_dir(directory) as tmp:
    if float16:
      with open(os.path.join(tmp, COMPACT_WEIGHTS), "wb") as f:
        np.savez_compressed(f, **{f"{i:04d}": w.astype(np.float16)
                                  for i, w in enumerate(exported.generator.get_weights())})
    else:
      exported.generator.save_weights(os.path.join(tmp, WEIGHTS))
    storage.write_json(os.path.join(tmp, GENERATOR_JSON), {
        "config": exported.config.to_dict(), "labels": exported.labels.to_json(),
        "normalizer": exported.normalizer.to_json(), "level": exported.level,
        **({"latent_prior": exported.latent_prior.to_json()} if exported.latent_prior
           else {})})


def generator_dir(directory) -> str:
  """`directory` if it holds an exported generator, else its generator/; UserError if neither."""
  directory = str(directory)
  for candidate in (directory, os.path.join(directory, GENERATOR_DIR)):
    if os.path.exists(os.path.join(candidate, GENERATOR_JSON)):
      return candidate
  raise UserError(f"{directory} holds no exported generator (no {GENERATOR_JSON}): give a "
                  "run directory that finished at least one stage")


def read_generator(directory) -> Exported:
  """The exported generator in `directory` (or in a run directory's generator/)."""
  directory = generator_dir(directory)
  try:
    info = storage.read_json(os.path.join(directory, GENERATOR_JSON))
    labels = Labels.from_json(info["labels"])
    config = Config.from_dict(info["config"])
    generator = new_generator(model_config(config, labels))
    compact = os.path.join(directory, COMPACT_WEIGHTS)
    if os.path.exists(compact):
      with np.load(compact) as weights:
        generator.set_weights([weights[f"{i:04d}"].astype(np.float32)
                               for i in range(len(weights.files))])
    else:
      generator.load_weights(os.path.join(directory, WEIGHTS))
    prior = info.get("latent_prior")  # Exports from before the key: N(0, I).
    latent_prior = LatentPrior.from_json(prior) if prior else None
  except (OSError, ValueError, KeyError, UserError) as e:
    raise UserError(f"the exported generator in {directory} is incomplete or damaged, or "
                    f"from another version ({e}); export it again by resuming the run") from None
  return Exported(generator, config, labels,
                  spectral.Normalizer.from_json(info["normalizer"]), info["level"], latent_prior)


def pretrained() -> str | None:
  """The directory of the generator shipped with the package (or $REVERBSYNTH_PRETRAINED's;
  empty: none), if it holds one."""
  directory = os.environ.get("REVERBSYNTH_PRETRAINED", PRETRAINED)
  return directory if directory and os.path.exists(
      os.path.join(directory, GENERATOR_JSON)) else None


def run_dir(given, doing: str):
  """--run, else the run 'reverbsynth train' exported last, else the generator shipped with
  the package (said on stderr, as `doing` it)."""
  found = paths.latest_run()
  shipped = pretrained() if given is None and found is None else None
  if shipped:
    logging.getLogger(__name__).info(
        f"{doing} the model shipped with reverbsynth ({shipped}): no trained run under "
        f"{paths.home()} ('reverbsynth train' makes one; --run to choose)")
    return shipped
  return paths.given_or_latest(given, found, "trained run", "--run", "train", doing)

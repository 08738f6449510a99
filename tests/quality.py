"""Evidence that training learns (`make quality`, about an hour on 2 CPU cores; not CI).

Builds the SoundFont bass set (dry and reverb; every bass program, pitches 24-84),
trains configs/cpu.yaml on it through the CLI (a rerun resumes), then measures notes
of the bass range (MIDI 28-55) against held-out real ones:
  - judge pitch / effect: share of notes that evaluate's judge (a classifier trained on the
    dataset's training split at the run's spectra) gives the asked pitch / effect;
  - f0 within 50 cents: share of notes whose pYIN f0 is within 50 cents of the asked pitch;
  - tail sign: share of wet/dry pairs whose reverb note keeps more energy in its last second.
Rows: real held-out notes as they are; the same notes through the config's spectra and
back (the round trip: what a perfect generator of these spectra could reach); and
generated notes with the same pitches, one latent per note shared by its dry and wet
version. Targets: judge pitch >= 80 % and judge effect >= 90 % of real's, f0 >= 80 % of
the round trip's, tail sign >= 90 % of real's. Pitches: the bass range within the run's.

  python -m tests.quality [--work DIR] [--stages N] [KEY=VALUE ...]
  python -m tests.quality --work DIR --curves [LABEL=]RUN|CURVE.json ... [--save DIR] [--png PATH]
"""

import argparse
import collections
import json
import logging
import os
import re
import subprocess
import sys

import numpy as np

from reverbsynth import storage

BASS = (28, 55)
NOTES = 64  # Held-out source notes measured (pYIN is slow): evenly spread over the sorted set.
TARGETS = {"judge pitch accuracy": ("real", 0.8), "judge effect accuracy": ("real", 0.9),
           "f0 within 50 cents": ("round trip", 0.8), "tail sign (reverb > dry)": ("real", 0.9)}


def _cli(*args) -> None:
  command = [sys.executable, "-m", "reverbsynth", *map(str, args)]
  print("$", " ".join(command[2:]), flush=True)
  subprocess.run(command, check=True)


def real_notes(data_dir, sample_rate: int, num_samples: int, pitches=BASS,
               splits=("valid", "test")):
  """{effect name: audio [N, S]} of held-out source notes of MIDI `pitches` (low, high)
  that have every effect, at the run's rate, and their pitches [N]."""
  from reverbsynth.data import manifest as manifest_lib, records
  effects = [e["name"] for e in manifest_lib.read(data_dir)["effects"]]
  notes = collections.defaultdict(dict)
  for split in splits:
    held_out = records.read_split(data_dir, split, num_samples, sample_rate=sample_rate,
                                  pitches=range(pitches[0], pitches[1] + 1))
    for i, source in enumerate(held_out["source_note"]):
      notes[source][held_out["effect_str"][i]] = (held_out["pitch"][i], held_out["audio"][i])
  complete = [n for _, n in sorted(notes.items()) if set(n) == set(effects)]
  complete = complete[::max(1, len(complete) // NOTES)][:NOTES]
  audio = {e: np.stack([n[e][1] for n in complete]) for e in effects}
  return audio, np.array([n[effects[0]][0] for n in complete])


def round_trip(synth, audio: dict) -> dict:
  """The notes through the run's spectra (normalized and clipped as in training) and back."""
  out = {}
  for effect, notes in audio.items():
    spectra = synth.normalizer.normalize(synth.spectral.audio_to_spectra(notes))
    out[effect] = synth.to_audio(spectra)
  return out


def generated_notes(synth, pitches, seed: int = 1) -> dict:
  """{effect name: audio [N, S]}: one latent per asked pitch in `pitches`, for every effect."""
  z = synth.latents(len(pitches), seed)
  return {e: synth.audio(z, pitches, [e] * len(pitches)) for e in synth.labels.effects}


def figures(audio: dict, pitches, sample_rate: int, judge) -> dict:
  from reverbsynth.evaluation import metrics
  every = np.concatenate(list(audio.values()))
  effects = np.repeat([judge.labels.effects.index(e) for e in audio], len(pitches))
  accuracy = judge.accuracy_on(every, np.tile(pitches, len(audio)), effects)
  return {
      "judge pitch accuracy": accuracy["pitch"],
      "judge effect accuracy": accuracy["effect"],
      "f0 within 50 cents": metrics.pitch_accuracy(every, sample_rate,
                                                   np.tile(pitches, len(audio))),
      "tail sign (reverb > dry)": metrics.tail_sign_share(audio["reverb"], audio["dry"],
                                                          sample_rate),  # The last second.
      "notes": len(every),
  }


def table(rows: dict) -> tuple:
  """(markdown table of rows {name: figures}, whether every target is met)."""
  names = list(rows)
  lines = [f"| measure | {' | '.join(names)} | generated / reference | target |",
           "|---" * (len(names) + 3) + "|"]
  met = True
  for measure in rows["real"]:
    cells = [f"{rows[n][measure]:.1%}" if measure != "notes" else str(rows[n][measure])
             for n in names]
    if measure not in TARGETS:
      lines.append(f"| {measure} | {' | '.join(cells)} | | |")
      continue
    reference, share = TARGETS[measure]
    ratio = rows["generated"][measure] / max(rows[reference][measure], 1e-9)
    met &= ratio >= share
    lines.append(f"| {measure} | {' | '.join(cells)} | {ratio:.0%} of {reference} | "
                 f">= {share:.0%}: {'met' if ratio >= share else 'missed'} |")
  return "\n".join(lines), met


def curve(run_dir, data_dir) -> list:
  """[{"images", "generator", measure: share of its reference}] for each stage checkpoint
  of a run, its EMA and raw generator; cached in RUN/quality-curve.json."""
  from reverbsynth.evaluation import judge as classifier, scores
  from reverbsynth.synthesis import synthesizer
  path = os.path.join(run_dir, "quality-curve.json")
  points = json.load(open(path)) if os.path.exists(path) else []
  synth = synthesizer.load(run_dir)
  judge = classifier.load_or_train(data_dir, synth.config, synth.labels, progress=False)
  low, high = max(BASS[0], synth.pitches[0]), min(BASS[1], synth.pitches[-1])
  real, pitches = real_notes(data_dir, synth.sample_rate, synth.num_samples, (low, high))
  references = {"real": figures(real, pitches, synth.sample_rate, judge),
                "round trip": figures(round_trip(synth, real), pitches, synth.sample_rate,
                                      judge)}
  done = {(p["images"], p["generator"]) for p in points}
  for _, images, kinds in scores.stage_synthesizers(run_dir, synth):
    for kind, stage_synth in kinds.items():
      if (images, kind) in done:
        continue
      row = figures(generated_notes(stage_synth, pitches), pitches, synth.sample_rate, judge)
      points.append({"images": images, "generator": kind, **{
          m: row[m] / max(references[ref][m], 1e-9) for m, (ref, _) in TARGETS.items()}})
      print(f"{synth.config.name} {images} {kind}: "
            + ", ".join(f"{m} {points[-1][m]:.0%}" for m in TARGETS), flush=True)
      storage.write_json(path, points)  # After each point: a long run of them may be cut.
  return points


def curves_figure(curves: dict, path) -> None:
  """One panel per target: each run's {name: points} share of its reference over images
  seen (EMA solid, raw dashed), the target as a dotted line."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(TARGETS), figsize=(4 * len(TARGETS), 3.4), sharey=True)
  for ax, (measure, (reference, share)) in zip(axes, TARGETS.items()):
    for i, (name, points) in enumerate(curves.items()):
      for kind, style in (("ema", "o-"), ("raw", "s--")):
        line = sorted((p["images"], p[measure]) for p in points if p["generator"] == kind)
        if line:
          ax.plot(*zip(*line), style, color=f"C{i}", markersize=3,
                  label=name if kind == "ema" else None, alpha=1 if kind == "ema" else 0.5)
    ax.axhline(share, color="k", linestyle=":")
    ax.set_title(f"{measure}\n(share of {reference}; target {share:.0%})", fontsize=9)
    ax.set_xlabel("images seen")
  axes[0].set_ylabel("generated / reference (EMA solid, raw dashed)")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def main(argv=None) -> int:
  logging.basicConfig(level=logging.INFO, format="%(message)s")  # The judge's and scoring lines.
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--work", default=os.path.join("build", "quality"))
  parser.add_argument("--stages", type=int, default=None)
  parser.add_argument("--curves", nargs="+", metavar="[LABEL=]RUN|CURVE.json", default=None,
                      help="Draw learning curves into --png instead of training: of runs "
                           "trained on the --work dataset (labelled with LABEL, or the "
                           "config's name), or saved by --save (docs/curves/ holds the "
                           "README's).")
  parser.add_argument("--save", metavar="DIR", default=None,
                      help="With --curves: also save each run's curve as DIR/LABEL.json.")
  parser.add_argument("--png", default=os.path.join("docs", "learning-curves.png"))
  parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
  args = parser.parse_args(argv)
  data_dir, run_dir = os.path.join(args.work, "data"), os.path.join(args.work, "run")
  if args.curves:
    curves = dict(_curve(spec, data_dir, args.save) for spec in args.curves)
    curves_figure(curves, args.png)
    print(f"wrote {args.png}")
    return 0
  if not os.path.exists(os.path.join(data_dir, "manifest.json")):
    _cli("build-dataset", "--effect", "reverb", "--family", "bass", "--out", data_dir,
         "--no-progress")
  _cli("train", "--config", "cpu", "--data", data_dir, "--out", run_dir, "--resume",
       "--no-progress", *(["--stages", args.stages] if args.stages else []), *args.overrides)
  text, met = evaluate(run_dir, data_dir)
  print(text)
  return 0 if met else 1


def evaluate(run_dir, data_dir) -> tuple:
  """(the quality table of the exported generator in `run_dir`, whether targets are met)."""
  from reverbsynth.evaluation import judge as classifier
  from reverbsynth.synthesis import synthesizer
  synth = synthesizer.load(run_dir)
  judge = classifier.load_or_train(data_dir, synth.config, synth.labels, progress=False)
  low, high = max(BASS[0], synth.pitches[0]), min(BASS[1], synth.pitches[-1])
  real, pitches = real_notes(data_dir, synth.sample_rate, synth.num_samples, (low, high))
  rows = {"real": figures(real, pitches, synth.sample_rate, judge),
          "round trip": figures(round_trip(synth, real), pitches, synth.sample_rate, judge),
          "generated": figures(generated_notes(synth, pitches), pitches, synth.sample_rate,
                               judge)}
  text, met = table(rows)
  return (f"\n{run_dir}: SoundFont bass pitches {low}..{high}, dry + reverb, "
          f"{len(pitches)} held-out source notes:\n\n{text}", met)


def _curve(spec: str, data_dir, save_dir=None) -> tuple:
  """(label, points) of a saved curve file {"name", "points"} or of a `[LABEL=]RUN`."""
  if spec.endswith(".json"):
    with open(spec) as f:
      saved = json.load(f)
    return saved["name"], saved["points"]
  label, _, run_dir = spec.rpartition("=")
  if not label:
    import yaml
    with open(os.path.join(run_dir, "config.yaml")) as f:
      label = yaml.safe_load(f)["name"]
  points = curve(run_dir, data_dir)
  if save_dir:
    os.makedirs(save_dir, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    with open(os.path.join(save_dir, f"{slug}.json"), "w") as f:
      json.dump({"name": label, "run": os.path.basename(os.path.normpath(run_dir)),
                 "points": points}, f, indent=1)
  return label, points


if __name__ == "__main__":
  sys.exit(main())

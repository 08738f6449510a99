"""Evidence that training learns (`make quality`, about an hour on 2 CPU cores; not CI).

Builds the SoundFont bass set (dry and reverb; every bass program, pitches 24-84), trains
configs/ddsp.yaml on it through the CLI (a rerun resumes; --config cpu for the 2 kHz spectral
config), then measures generated notes against held-out real ones over the run's pitches:
  - judge pitch / effect: share of notes that evaluate's judge (a classifier trained on the
    dataset's training split at the run's rate and spectra) gives the asked pitch / effect;
  - f0 within 50 cents: share of notes whose pYIN f0 is within 50 cents of the asked pitch;
  - tail sign: share of wet/dry pairs whose reverb note keeps more energy in its last second;
  - Frechet distance on the judge's embedding and NDB (k-means bins of log spectra) against
    training notes, over the whole test split and as many generated notes with its labels;
  - a ddsp run's learned reverb: RT60 (Schroeder, T20) of a click through it against the
    real preset's.
Rows: real held-out notes as they are; for a spectral generator the same notes through its
spectra and back (the round trip: what a perfect generator of these spectra could reach);
generated notes with the same pitches, one latent per note shared by its dry and wet version.
Targets (TARGETS): judge pitch, judge effect, f0 and tail sign >= 95 % of real's, Frechet
distance <= 2x real's, NDB <= 6 of 50 bins, RT60 within 10 % of the preset's.

  python -m tests.quality [--work DIR] [--config NAME] [--stages N] [KEY=VALUE ...]
  python -m tests.quality --work DIR --evaluate RUN [--response-png PATH]
  python -m tests.quality --work DIR --curves [LABEL=]RUN|CURVE.json ... [--save DIR] [--png PATH]
  python -m tests.quality --losses LABEL=RUN ... --png PATH
  python -m tests.quality --work DIR --mel-round-trip   (f0 through each spectral setting)
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

NOTES = 96  # Held-out source notes measured (pYIN is slow): evenly spread over the sorted set.
# measure: (reference row, ">=" share of it | "<=" multiple of it | "count <=" | "within").
TARGETS = {"judge pitch accuracy": ("real", ">=", 0.95),
           "judge effect accuracy": ("real", ">=", 0.95),
           "f0 within 50 cents": ("real", ">=", 0.95),
           "tail sign (reverb > dry)": ("real", ">=", 0.95),
           "Frechet distance": ("real", "<=", 2.0),
           "NDB (of 50 bins)": ("real", "count <=", 6),
           "reverb RT60 (s)": ("real", "within", 0.10)}


def _cli(*args) -> None:
  command = [sys.executable, "-m", "reverbsynth", *map(str, args)]
  print("$", " ".join(command[2:]), flush=True)
  subprocess.run(command, check=True)


def real_notes(data_dir, sample_rate: int, num_samples: int, pitches,
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


# (name, sample rate, samples, nfft, hop, frames, MIDI pitches): spectral settings of the
# configs, and the 4 kHz one of bug hunt 2; pitches whose octave above stays below a
# quarter of the rate (pYIN's search).
ROUND_TRIP_SIZES = (("reverbsynth, gansynth: 16 kHz, nfft 2048", 16000, 64000, 2048, 512, 128,
                     (24, 84)),
                    ("16 kHz, nfft 1024", 16000, 64000, 1024, 256, 256, (24, 84)),
                    ("4 kHz, nfft 512", 4000, 16000, 512, 128, 128, (24, 71)),
                    ("cpu: 2 kHz, nfft 256", 2000, 8000, 256, 128, 64, (28, 55)))


def mel_round_trip(data_dir) -> str:
  """A table: share of held-out bass notes (every effect) whose pYIN f0 stays within 50
  cents of their pitch through each spectral setting and back (issue 26), for GANSynth's
  mel matrix, the one widened apart, and linear bins."""
  from reverbsynth import spectral
  from reverbsynth.evaluation import metrics
  rows = ["| spectra | MIDI | notes | real | mel, GANSynth's matrix | mel, widened apart "
          "| linear |", "|---|---|---|---|---|---|---|"]
  for name, rate, samples, nfft, hop, frames, midi in ROUND_TRIP_SIZES:
    audio, pitches = real_notes(data_dir, rate, samples, midi)
    at_rate, pitches = np.concatenate(list(audio.values())), np.tile(pitches, len(audio))
    cells = [metrics.pitch_accuracy(at_rate, rate, pitches)]
    for mel, bands in ((True, "gansynth"), (True, "separate"), (False, "gansynth")):
      sp = spectral.Spectral(spectral.SpectralConfig(rate, samples, nfft, hop, frames, mel,
                                                     bands))
      back = np.concatenate([sp.spectra_to_audio(sp.audio_to_spectra(at_rate[i:i + 32])).numpy()
                             for i in range(0, len(at_rate), 32)])
      cells.append(metrics.pitch_accuracy(back, rate, pitches))
    rows.append(f"| {name} | {midi[0]}-{midi[1]} | {len(at_rate)} | "
                + " | ".join(f"{c:.1%}" for c in cells) + " |")
  return ("Held-out SoundFont bass notes (dry and reverb), f0 within 50 cents (pYIN) as they are "
          "and after audio -> spectra -> audio:\n\n" + "\n".join(rows))


def figures(audio: dict, pitches, sample_rate: int, judge) -> dict:
  """The paired measures of {effect: audio [N, S]} notes of MIDI pitches [N]."""
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


def distribution(run_dir, data_dir, judge) -> dict:
  """{row: {"Frechet distance", "NDB (of 50 bins)"}} of the test split and of generated notes
  with its labels (evaluation.scores), against training notes."""
  from reverbsynth.data import records
  from reverbsynth.evaluation import metrics, scores
  from reverbsynth.synthesis import synthesizer
  synth = synthesizer.load(run_dir)
  test = records.read_split(data_dir, "test", synth.num_samples,
                                   sample_rate=synth.sample_rate, pitches=synth.pitches)
  train = records.read_split(data_dir, "train", synth.num_samples, limit=2000,
                                    sample_rate=synth.sample_rate, pitches=synth.pitches)
  reference = scores.references(judge, train["audio"])
  z = synth.latents(len(test["audio"]), 0)
  rows = {"real": test["audio"], "generated": synth.audio(z, test["pitch"], test["effect"])}
  out = {}
  for name, audio in rows.items():
    found = judge.outputs(audio)
    out[name] = {"Frechet distance": metrics.frechet_distance(reference["embedding"],
                                                              found["embedding"]),
                 "NDB (of 50 bins)": metrics.ndb(reference["spectra"], found["spectra"], 50)}
  return out


def reverb_rt60(synth, data_dir) -> dict:
  """{"real": RT60 of the preset, "generated": of the learned response} for a run whose reverb
  is a learned response, else {}."""
  from reverbsynth.evaluation import responses
  if not synth.plays_audio or "reverb" not in synth.labels.linear:
    return {}
  rt60 = responses.compare(synth, data_dir)["reverb"]["rt60"]
  return {"real": rt60[0], "generated": rt60[1]}


def response_figure(synth, data_dir, path) -> None:
  """The learned reverb beside the real preset's: impulse responses (the first 50 ms, and the
  envelope in dB over 2.5 s) and Schroeder decay curves with their RT60."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from reverbsynth.evaluation import metrics, responses
  found = responses.compare(synth, data_dir)["reverb"]
  rate = synth.sample_rate
  fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
  for name, style in (("real", "k-"), ("learned", "C1--")):
    ir = found[name]
    label = (f"{'pedalboard Reverb (preset)' if name == 'real' else 'learned response'}: "
             f"RT60 {found['rt60'][name == 'learned']:.2f} s, DRR "
             f"{found['drr_db'][name == 'learned']:.1f} dB")
    t = np.arange(len(ir)) / rate
    early = t < 0.05
    axes[0].plot(1000 * t[early], ir[early], style, linewidth=0.8, label=label)
    window = int(0.01 * rate)
    envelope = 10 * np.log10(np.convolve(ir ** 2, np.ones(window) / window, "same") + 1e-12)
    late = t < 2.5
    axes[1].plot(t[late], envelope[late], style, linewidth=0.8)
    axes[2].plot(t[late], metrics.energy_decay_db(ir)[late], style, linewidth=1.2, label=label)
  axes[0].set(title=f"impulse response, first 50 ms (dry tap {found['real'][0]:.2f} "
                   f"/ {found['learned'][0]:.2f}, off the scale)", xlabel="ms", ylim=(-0.04, 0.04))
  axes[1].set(title="energy envelope (10 ms), dB", xlabel="s", ylim=(-110, 0))
  axes[2].set(title=f"Schroeder decay (ESR {found['esr']:.1e})", xlabel="s", ylabel="dB",
              ylim=(-80, 2))
  axes[2].axhline(-60, color="grey", linestyle=":")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def _judged(measure: str, generated: float, reference: float) -> tuple:
  """(the generated row's standing against its reference, as text; whether it is met)."""
  _, kind, bound = TARGETS[measure]
  if kind == ">=":
    ratio = generated / max(reference, 1e-9)
    return f"{ratio:.0%} of real | >= {bound:.0%}", ratio >= bound
  if kind == "<=":
    ratio = generated / max(reference, 1e-9)
    return f"{ratio:.2f}x real | <= {bound:.0f}x", ratio <= bound
  if kind == "count <=":
    return f"{generated:.0f} | <= {bound}", generated <= bound
  error = abs(generated / reference - 1)
  return f"{error:.1%} off | within {bound:.0%}", error <= bound


def table(rows: dict) -> tuple:
  """(markdown table of rows {name: figures}, whether every target is met)."""
  names = list(rows)
  lines = [f"| measure | {' | '.join(names)} | generated vs real | target | |",
           "|---" * (len(names) + 4) + "|"]
  met = True
  for measure in rows["real"]:
    cells = [_cell(measure, rows[n].get(measure)) for n in names]
    if measure not in TARGETS:
      lines.append(f"| {measure} | {' | '.join(cells)} | | | |")
      continue
    standing, ok = _judged(measure, rows["generated"][measure], rows["real"][measure])
    met &= ok
    lines.append(f"| {measure} | {' | '.join(cells)} | {standing} | {'met' if ok else 'missed'} |")
  return "\n".join(lines), met


def _cell(measure: str, value) -> str:
  if value is None:
    return ""
  if measure == "notes" or measure.startswith("NDB"):
    return str(int(value))
  if measure.startswith(("Frechet", "reverb RT60")):
    return f"{value:.2f}"
  return f"{value:.1%}"


CURVES = ("judge pitch accuracy", "judge effect accuracy", "f0 within 50 cents",
          "tail sign (reverb > dry)")  # Drawn per stage checkpoint, as shares of real's.


def curve(run_dir, data_dir) -> list:
  """[{"images", "generator", measure: share of its reference}] for each stage checkpoint
  of a run, its EMA and raw generator; cached in RUN/quality-curve.json."""
  from reverbsynth.evaluation import judge as classifier, scores
  from reverbsynth.synthesis import synthesizer
  path = os.path.join(run_dir, "quality-curve.json")
  points = json.load(open(path)) if os.path.exists(path) else []
  synth = synthesizer.load(run_dir)
  judge = classifier.load_or_train(data_dir, synth.config, synth.labels, progress=False)
  low, high = synth.pitches[0], synth.pitches[-1]
  real, pitches = real_notes(data_dir, synth.sample_rate, synth.num_samples, (low, high))
  references = {"real": figures(real, pitches, synth.sample_rate, judge)}
  done = {(p["images"], p["generator"]) for p in points}
  for _, images, kinds in scores.stage_synthesizers(run_dir, synth, data_dir):
    for kind, stage_synth in kinds.items():
      if (images, kind) in done:
        continue
      row = figures(generated_notes(stage_synth, pitches), pitches, synth.sample_rate, judge)
      points.append({"images": images, "generator": kind, **{
          m: row[m] / max(references["real"][m], 1e-9) for m in CURVES}})
      print(f"{synth.config.name} {images} {kind}: "
            + ", ".join(f"{m} {points[-1][m]:.0%}" for m in CURVES), flush=True)
      storage.write_json(path, points)  # After each point: a long run of them may be cut.
  return points


def curves_figure(curves: dict, path) -> None:
  """One panel per target: each run's {name: points} share of its reference over images
  seen (EMA solid, raw dashed), the target as a dotted line."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.4), sharey=True)
  for ax, measure in zip(axes, CURVES):
    reference, _, share = TARGETS[measure]
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


LOSSES = ("loss/reconstruction", "loss/response", "loss/kl", "loss/d_wasserstein", "loss/envelope")


def scalars(run_dir, tags=LOSSES) -> dict:
  """{tag: [(images, value)]} of a run's TensorBoard log."""
  from tensorboard.backend.event_processing import event_accumulator
  found = {}
  logs = os.path.join(run_dir, "logs")
  for name in sorted(os.listdir(logs)):
    events = event_accumulator.EventAccumulator(os.path.join(logs, name), size_guidance={
        event_accumulator.SCALARS: 0})
    events.Reload()
    for tag in set(tags) & set(events.Tags()["scalars"]):
      found.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
  return found


def loss_figure(runs: dict, path, tags=LOSSES, smooth: int = 10) -> None:
  """One panel per loss term that some run logged: each run's {label: run_dir} curve over
  images seen (a running mean over `smooth` summaries)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import matplotlib.ticker
  found = {label: scalars(run_dir, tags) for label, run_dir in runs.items()}
  tags = [tag for tag in tags if any(tag in curves for curves in found.values())]
  fig, axes = plt.subplots(1, len(tags), figsize=(4 * len(tags), 3.2), squeeze=False)
  axes = axes[0]
  for i, (label, curves) in enumerate(found.items()):
    for ax, tag in zip(axes, tags):
      if tag in curves:
        images, values = np.array(sorted(curves[tag])).T
        kernel = np.ones(min(smooth, len(values))) / min(smooth, len(values))
        ax.plot(images[len(kernel) - 1:], np.convolve(values, kernel, "valid"), color=f"C{i}",
                label=label, linewidth=1)
  for ax, tag in zip(axes, tags):
    ax.set(title=tag.split("/")[-1], xlabel="images seen", xscale="log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  axes[0].set_yscale("log")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def main(argv=None) -> int:
  logging.basicConfig(level=logging.INFO, format="%(message)s")  # The judge's and scoring lines.
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--work", default=os.path.join("build", "quality"))
  parser.add_argument("--stages", type=int, default=None)
  parser.add_argument("--config", default="ddsp", help="The config to train (default ddsp).")
  parser.add_argument("--evaluate", metavar="RUN", default=None,
                      help="Only the table, of this run (or exported generator) on the --work "
                           "dataset.")
  parser.add_argument("--curves", nargs="+", metavar="[LABEL=]RUN|CURVE.json", default=None,
                      help="Draw learning curves into --png instead of training: of runs "
                           "trained on the --work dataset (labelled with LABEL, or the "
                           "config's name), or saved by --save (docs/curves/ holds the "
                           "README's).")
  parser.add_argument("--losses", nargs="+", metavar="LABEL=RUN", default=None,
                      help="Draw the runs' loss terms over images seen (TensorBoard logs) "
                           "into --png instead of training.")
  parser.add_argument("--response-png", metavar="PATH", default=None,
                      help="Only the picture of the learned reverb against the preset's, of "
                           "--evaluate RUN (default: the trained run).")
  parser.add_argument("--mel-round-trip", action="store_true",
                      help="Only the table of f0 through each spectral setting and back.")
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
  if args.mel_round_trip:
    print(mel_round_trip(data_dir))
    return 0
  if args.losses:
    loss_figure(dict(spec.split("=", 1) for spec in args.losses), args.png)
    print(f"wrote {args.png}")
    return 0
  if args.response_png:
    from reverbsynth.synthesis import synthesizer
    response_figure(synthesizer.load(args.evaluate or run_dir), data_dir, args.response_png)
    print(f"wrote {args.response_png}")
    return 0
  if args.evaluate:
    text, met = evaluate(args.evaluate, data_dir)
    print(text)
    return 0 if met else 1
  _cli("train", "--config", args.config, "--data", data_dir, "--out", run_dir, "--resume",
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
  low, high = synth.pitches[0], synth.pitches[-1]
  real, pitches = real_notes(data_dir, synth.sample_rate, synth.num_samples, (low, high))
  rows = {"real": figures(real, pitches, synth.sample_rate, judge)}
  if not synth.plays_audio:
    rows["round trip"] = figures(round_trip(synth, real), pitches, synth.sample_rate, judge)
  rows["generated"] = figures(generated_notes(synth, pitches), pitches, synth.sample_rate, judge)
  for name, values in distribution(run_dir, data_dir, judge).items():
    rows[name].update(values)
  for name, value in reverb_rt60(synth, data_dir).items():
    rows[name]["reverb RT60 (s)"] = value
  text, met = table(rows)
  return (f"\n{run_dir}: SoundFont bass pitches {low}..{high}, dry + reverb at "
          f"{synth.sample_rate} Hz, {len(pitches)} held-out source notes (Frechet and NDB: the "
          f"whole test split):\n\n{text}", met)


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

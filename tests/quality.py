"""Evidence that training learns (`make quality`, about an hour on 2 CPU cores; not CI).

Builds a small real dataset (SoundFont bass notes of a few pitches, dry and
reverb), trains configs/cpu.yaml on it through the CLI, then measures generated
notes against held-out real ones:
  - f0 within 50 cents: share of notes whose pYIN f0 is within 50 cents of the asked pitch;
  - tail sign: share of wet/dry pairs whose reverb note keeps more energy in its last second.
Target: generated >= 80 % of the real figure on both. A rerun resumes the run.

  python -m tests.quality [--work DIR] [--stages N] [KEY=VALUE ...]
"""

import argparse
import collections
import os
import subprocess
import sys

import numpy as np

PITCHES = (40, 44)      # E2..G#2: five bass pitches.
LATENTS_PER_PITCH = 8
TARGET = 0.8


def _cli(*args) -> None:
  command = [sys.executable, "-m", "reverbsynth", *map(str, args)]
  print("$", " ".join(command[2:]), flush=True)
  subprocess.run(command, check=True)


def real_notes(data_dir, splits=("valid", "test")):
  """{effect name: audio [N, S]} and pitches [N] of held-out source notes that have every effect."""
  from reverbsynth import manifest as manifest_lib, records
  effects = [e["name"] for e in manifest_lib.read(data_dir)["effects"]]
  notes = collections.defaultdict(dict)
  for split in splits:
    held_out = records.read_split(data_dir, split)
    for i, source in enumerate(held_out["source_note"]):
      notes[source][held_out["effect_str"][i]] = (held_out["pitch"][i], held_out["audio"][i])
  complete = [n for _, n in sorted(notes.items()) if set(n) == set(effects)]
  audio = {e: np.stack([n[e][1] for n in complete]) for e in effects}
  return audio, np.array([n[effects[0]][0] for n in complete])


def generated_notes(run_dir, pitches, seed: int = 1):
  """{effect name: audio [N, S]} with the same latent and pitch across effects, and pitches [N]."""
  from reverbsynth import synthesis
  synth = synthesis.load(run_dir)
  pitches = np.repeat(pitches, LATENTS_PER_PITCH)
  z = synth.latents(len(pitches), seed)
  return {e: synth.audio(z, pitches, [e] * len(pitches)) for e in synth.labels.effects}, pitches


def figures(audio: dict, pitches, sample_rate: int) -> dict:
  from reverbsynth import metrics
  every = np.concatenate(list(audio.values()))
  return {
      "f0 within 50 cents": metrics.pitch_accuracy(every, sample_rate,
                                                   np.tile(pitches, len(audio))),
      "tail sign (reverb > dry)": metrics.tail_sign_share(audio["reverb"], audio["dry"],
                                                          sample_rate),  # The last second.
      "notes": len(every),
  }


def table(real: dict, generated: dict) -> tuple:
  """(markdown table, whether every target is met)."""
  lines = ["| measure | real (held out) | generated | generated / real | target >= 80 % |",
           "|---|---|---|---|---|"]
  met = True
  for name in real:
    if name == "notes":
      lines.append(f"| notes | {real[name]} | {generated[name]} | | |")
      continue
    ratio = generated[name] / real[name] if real[name] else float("nan")
    ok = ratio >= TARGET
    met &= ok
    lines.append(f"| {name} | {real[name]:.1%} | {generated[name]:.1%} | {ratio:.0%} | "
                 f"{'met' if ok else 'missed'} |")
  return "\n".join(lines), met


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--work", default=os.path.join("build", "quality"))
  parser.add_argument("--stages", type=int, default=None)
  parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
  args = parser.parse_args(argv)
  from reverbsynth import manifest as manifest_lib
  data_dir, run_dir = os.path.join(args.work, "data"), os.path.join(args.work, "run")
  if not os.path.exists(os.path.join(data_dir, "manifest.json")):
    _cli("build-dataset", "--effect", "reverb", "--family", "bass", "--pitch-min", PITCHES[0],
         "--pitch-max", PITCHES[1], "--valid-fraction", 0.15, "--test-fraction", 0.15,
         "--out", data_dir, "--no-progress")
  _cli("train", "--config", "cpu", "--data", data_dir, "--out", run_dir, "--resume",
       *(["--stages", args.stages] if args.stages else []), *args.overrides)
  real_audio, real_pitches = real_notes(data_dir)
  pitches = np.unique(real_pitches)
  fake_audio, fake_pitches = generated_notes(run_dir, pitches)
  sample_rate = manifest_lib.read(data_dir)["audio"]["sample_rate"]
  text, met = table(figures(real_audio, real_pitches, sample_rate),
                    figures(fake_audio, fake_pitches, sample_rate))
  print(f"\nconfigs/cpu.yaml on SoundFont bass pitches {PITCHES[0]}..{PITCHES[1]}, dry + reverb; "
        f"{LATENTS_PER_PITCH} latents per pitch and effect:\n")
  print(text)
  return 0 if met else 1


if __name__ == "__main__":
  sys.exit(main())

"""The evaluation report: report.json, report.md and its pictures (matplotlib, no display)."""

import os

import numpy as np

from reverbsynth import storage
from reverbsynth.evaluation import metrics
from reverbsynth.synthesis import outputs

COLUMNS = [  # (key, heading, format, better)
    ("pitch_accuracy", "pitch acc.", "{:.1%}", "higher"),
    ("pitch_entropy", "pitch entropy", "{:.3f}", "lower"),
    ("effect_accuracy", "effect acc.", "{:.1%}", "higher"),
    ("inception_score_pitch", "IS pitch", "{:.2f}", "higher"),
    ("inception_score_effect", "IS effect", "{:.2f}", "higher"),
    ("frechet_distance", "Frechet dist.", "{:.2f}", "lower"),
    ("ndb", "NDB", "{}", "lower"),
    ("f0_within_50_cents", "f0 within 50 c", "{:.1%}", "higher"),
    # Of a model conditioned on families / velocity (scores.score has them then).
    ("family_accuracy", "family acc.", "{:.1%}", "higher"),
    ("velocity_accuracy", "velocity acc.", "{:.1%}", "higher"),
    # Rank correlations with velocity within each family and effect (metrics.follows).
    ("level_follows_velocity", "level ~ velocity", "{:.2f}", "as real"),
    ("brightness_follows_velocity", "brightness ~ velocity", "{:.2f}", "as real"),
    # Rank correlation of the families' mean brightness with the real row's (family_order).
    ("family_brightness_order", "family brightness order", "{:.2f}", "higher"),
]


def family_order(rows: dict) -> dict:
  """{row: rank correlation of its families' mean brightness with the first (real) row's},
  where the rows hold at least three families."""
  real = next(iter(rows.values()))["family_brightness"]
  if len(real) < 3:
    return {}
  return {name: metrics.rank_correlation([real[f] for f in real],
                                         [r["family_brightness"][f] for f in real])
          for name, r in rows.items()}


def cells(rows: dict, effects) -> tuple:
  """(headings, [(row label, [cell text])]): the figures, one row per set of notes; a column
  only where some row has its figure."""
  order = family_order(rows)
  rows = {name: {**r, **({"family_brightness_order": order[name]} if order else {})}
          for name, r in rows.items()}
  columns = [c for c in COLUMNS if any(c[0] in r for r in rows.values())]
  heads = [h for _, h, _, _ in columns] + [f"tail dB {e}" for e in effects]
  lines = []
  for name, r in rows.items():
    row = [fmt.format(r[key]) + (f"/{r['ndb_bins']}" if key == "ndb" else "")
           for key, _, fmt, _ in columns]
    row += [f"{r['tail_db'][e]:.1f}" if e in r["tail_db"] else "" for e in effects]
    lines.append((f"{name} ({r['notes']})", row))
  return heads, lines


def table(rows: dict, effects) -> str:
  """The figures as a Markdown table, one row per set of notes."""
  heads, lines = cells(rows, effects)
  out = ["| notes | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
  return "\n".join(out + [f"| {label} | " + " | ".join(row) + " |" for label, row in lines])


def examples(result, count: int = 4) -> list:
  """[(effect index, test row)]: the first note of up to `count` pitches, for each effect."""
  real = result["sets"][0]
  chosen = []
  for e in range(len(result["synth"].labels.effects)):
    pitches = sorted(set(real.pitches[real.effects == e]))
    picks = [pitches[int(i)] for i in np.linspace(0, len(pitches) - 1, min(count, len(pitches)))]
    chosen += [(e, int(np.flatnonzero((real.effects == e) & (real.pitches == p))[0]))
               for p in picks]
  return chosen


def _spectrogram_figure(result, path) -> None:
  import matplotlib.pyplot as plt
  judge, (real, generated) = result["judge"], result["sets"][:2]
  chosen = examples(result)
  effects = result["synth"].labels.effects
  columns = max(sum(1 for e, _ in chosen if e == k) for k in range(len(effects)))
  fig, axes = plt.subplots(2 * len(effects), columns, squeeze=False,
                           figsize=(3 * columns, 2.2 * 2 * len(effects)))
  for ax in axes.flat:
    ax.axis("off")
  for k in range(len(effects)):
    rows = [i for e, i in chosen if e == k]
    for c, i in enumerate(rows):
      for r, notes in enumerate((real, generated)):
        spectra = judge.normalizer.normalize(judge.spectral.audio_to_spectra(notes.audio[i:i + 1]))
        ax = axes[2 * k + r, c]
        ax.imshow(outputs.spectra_image(np.asarray(spectra))[0, ..., 0], aspect="auto",
                  cmap="magma")
        ax.set_title(f"{notes.name.split(' ')[0]} {effects[k]} pitch {notes.pitches[i]}",
                     fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def _rainbowgram_figure(result, path) -> None:
  """Magnitude as brightness, instantaneous frequency as hue: one real and one generated note."""
  import matplotlib.colors
  import matplotlib.pyplot as plt
  judge, (real, generated) = result["judge"], result["sets"][:2]
  e, i = examples(result, 1)[-1]  # A note of the last effect (a wet one when there is one).
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for ax, notes in zip(axes, (real, generated)):
    spectra = np.asarray(judge.spectral.audio_to_spectra(notes.audio[i:i + 1]))[0]
    magnitude, frequency = spectra[..., 0].T[::-1], spectra[..., 1].T[::-1]
    value = np.clip((magnitude - magnitude.max() + 10) / 10, 0, 1)  # Top 10 nats of log power.
    hue = (frequency + 1) / 2 % 1.0
    ax.imshow(matplotlib.colors.hsv_to_rgb(np.stack([hue, np.ones_like(hue), value], -1)),
              aspect="auto")
    ax.set_title(f"{notes.name}: {result['synth'].labels.effects[e]}, pitch {notes.pitches[i]}",
                 fontsize=9)
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def _metrics_figure(rows: dict, path) -> None:
  import matplotlib.pyplot as plt
  shares = [("pitch_accuracy", "pitch acc."), ("effect_accuracy", "effect acc."),
            ("f0_within_50_cents", "f0 within 50 c")]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
  width = 0.8 / len(rows)
  for j, (name, r) in enumerate(rows.items()):
    left.bar(np.arange(len(shares)) + j * width, [r[k] for k, _ in shares], width, label=name)
    right.bar(np.arange(2) + j * width, [r["frechet_distance"], r["ndb"] / r["ndb_bins"]],
              width, label=name)
  left.set_xticks(np.arange(len(shares)) + 0.4 - width / 2, [h for _, h in shares])
  left.set_ylim(0, 1)
  left.set_title("higher is better")
  right.set_xticks(np.arange(2) + 0.4 - width / 2, ["Frechet distance", "NDB / bins"])
  right.set_title("lower is better")
  left.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def _curves_figure(rows: dict, curve: list, effects, path) -> None:
  """Figures against images seen, one line per generator (EMA, raw), real as a dashed line."""
  import matplotlib.pyplot as plt
  real = rows["real (test split)"]
  tail_gap = lambda r: r["tail_db"].get(effects[-1], np.nan) - r["tail_db"].get(effects[0], np.nan)
  panels = [("pitch_accuracy", "judge pitch accuracy", lambda r: r["pitch_accuracy"]),
            ("effect_accuracy", "judge effect accuracy", lambda r: r["effect_accuracy"]),
            ("f0_within_50_cents", "f0 within 50 cents", lambda r: r["f0_within_50_cents"]),
            ("tail", f"tail dB, {effects[-1]} - {effects[0]}", tail_gap)]
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
  for ax, (_, title, value) in zip(axes, panels):
    for kind, style in (("ema", "o-"), ("raw", "s--")):
      points = [(c["images"], value(rows[c["row"]])) for c in curve if c["generator"] == kind]
      ax.plot(*zip(*points), style, label=f"{kind} generator", markersize=4)
    ax.axhline(value(real), color="k", linestyle=":", label="real (test split)")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("images seen")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def write(result: dict, out) -> dict:
  """Writes report.json, report.md and PNGs into `out`; returns {file name: path}."""
  import matplotlib
  matplotlib.use("Agg")
  effects = result["synth"].labels.effects
  rows = result["rows"]
  paths = {name: os.path.join(out, name) for name in
           ("report.json", "report.md", "spectrograms.png", "rainbowgram.png", "metrics.png")}
  os.makedirs(out, exist_ok=True)
  for name, draw in (("spectrograms.png", _spectrogram_figure),
                     ("rainbowgram.png", _rainbowgram_figure)):
    with storage.atomic_path(paths[name]) as tmp:
      draw(result, tmp)
  with storage.atomic_path(paths["metrics.png"]) as tmp:
    _metrics_figure(rows, tmp)
  curves = ""
  if result["curve"]:
    paths["learning-curves.png"] = os.path.join(out, "learning-curves.png")
    with storage.atomic_path(paths["learning-curves.png"]) as tmp:
      _curves_figure(rows, result["curve"], effects, tmp)
    curves = ("\nLearning curves: each stage checkpoint's EMA and raw generator against "
              "images seen:\n\n![learning curves](learning-curves.png)\n")
  summary = {k: result[k] for k in ("run", "data", "judge_accuracy", "rows", "curve")}
  storage.write_json(paths["report.json"], summary)
  judge = result["judge_accuracy"]
  text = f"""# Evaluation of {result['run']}

Dataset: {result['data']}. The real row is the test split; generated rows play the same
pitch and effect labels with latents from the seed. The judge (a CNN trained on the
training split) gets {judge['pitch']:.1%} of held-out pitches and {judge['effect']:.1%} of
held-out effects right: the ceiling for the accuracies below. Frechet distance (judge
embedding) and NDB (k-means bins of log spectra) compare each row with the training split.
Tail dB: energy of the last second against the whole note, by effect.

{table(rows, effects)}

![metrics](metrics.png)
{curves}
Real (upper) and generated (lower) spectrograms, per effect and pitch:

![spectrograms](spectrograms.png)

Rainbowgrams (brightness: log magnitude; colour: instantaneous frequency):

![rainbowgram](rainbowgram.png)
"""
  with storage.atomic_path(paths["report.md"]) as tmp, open(tmp, "w") as f:
    f.write(text)
  return paths


def summary(result: dict, written: dict, page: str) -> str:
  """What `reverbsynth evaluate` prints: the table, the judge's accuracy on held-out notes and
  where the report (`written`, report.write's) and its page are."""
  accuracy = result["judge_accuracy"]
  held_out = ", ".join(f"{name} {share:.1%}" for name, share in accuracy.items())
  return (f"{table(result['rows'], result['synth'].labels.effects)}\n"
          f"judge held-out accuracy: {held_out}\nReport: {written['report.md']}; "
          f"to listen: {page}")

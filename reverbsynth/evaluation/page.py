"""report.html: the evaluation as a page to listen to, as GANSynth's audio page is.

One HTML file with everything it shows beside it: the figures table, the pictures
report.write drew, and per effect and pitch the real and the generated note side by side,
each a WAV (16-bit) with its spectrogram, in `notes/`. A script on the page records, in
the body's data attributes, how many players loaded their audio, how many failed and any
script error, so that a headless browser can check the page (tests/test_evaluation.py).
"""

import html
import os

from reverbsynth import storage
from reverbsynth.evaluation import report
from reverbsynth.synthesis import outputs

NOTES_DIR = "notes"

_CHECK = """<script>
(() => {
  const body = document.body, players = [...document.querySelectorAll("audio")];
  body.dataset.errors = "";
  window.addEventListener("error", e => { body.dataset.errors += (e.message || "error") + ";"; });
  let loaded = 0, failed = 0;
  const settle = () => { body.dataset.players = `${players.length}`;
                         body.dataset.loaded = `${loaded}`; body.dataset.failed = `${failed}`; };
  settle();
  for (const a of players) {
    const done = ok => { ok ? loaded++ : failed++; settle(); };
    if (a.readyState >= 1) { done(a.duration > 0); continue; }
    a.addEventListener("loadedmetadata", () => done(a.duration > 0), {once: true});
    a.addEventListener("error", () => done(false), {once: true});
    a.load();
  }
})();
</script>"""


def _table(rows: dict, effects) -> str:
  """The figures as an HTML table, one row per set of notes."""
  heads, lines = report.cells(rows, effects)
  out = ["<table><tr><th>notes</th>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads)
         + "</tr>"]
  out += [f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{c}</td>" for c in cells)
          + "</tr>" for label, cells in lines]
  return "\n".join(out + ["</table>"])


def _note(notes, i: int, effect: str, sample_rate: int, out) -> str:
  """Writes note i of `notes` (WAV and spectrogram PNG) into out/notes/; its <figure>."""
  stem = f"{notes.name.split(' ')[0]}-{outputs.file_names([effect])[effect]}-{notes.pitches[i]}"
  audio = outputs.normalize(notes.audio[i:i + 1], only_down=True)[0]
  outputs.write_wav(os.path.join(out, NOTES_DIR, stem + ".wav"), audio, sample_rate, "16")
  outputs.write_png(os.path.join(out, NOTES_DIR, stem + ".png"),
                    outputs.audio_image(audio, sample_rate))
  return (f'<figure><figcaption>{html.escape(notes.name)}</figcaption>'
          f'<img src="{NOTES_DIR}/{stem}.png" alt="spectrogram of {stem}">'
          f'<audio controls preload="metadata" src="{NOTES_DIR}/{stem}.wav"></audio></figure>')


def write(result: dict, written: dict, out) -> str:
  """Writes out/report.html and its notes (report.examples: per effect, the real and the
  generated note of a few pitches) beside the pictures report.write wrote (`written`:
  {file name: path}). Returns the page's path."""
  synth, (real, generated) = result["synth"], result["sets"][:2]
  effects = synth.labels.effects
  os.makedirs(os.path.join(out, NOTES_DIR), exist_ok=True)
  sections = []
  for k, effect in enumerate(effects):
    pairs = [f'<div class="pair"><h3>pitch {real.pitches[i]}</h3>'
             + "".join(_note(notes, i, effect, synth.sample_rate, out)
                       for notes in (real, generated)) + "</div>"
             for e, i in report.examples(result) if e == k]
    sections.append(f"<h2>{html.escape(effect)}</h2>" + "".join(pairs))
  judge = result["judge_accuracy"]
  pictures = [name for name in written if name.endswith(".png")]
  page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Evaluation of {html.escape(str(result['run']))}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 80em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
.pair {{ display: inline-block; vertical-align: top; margin: 0 1.5em 1.5em 0; }}
figure {{ display: inline-block; margin: 0 0.5em; }}
figure img {{ display: block; width: 16em; }} audio {{ width: 16em; }}
</style></head>
<body>
<h1>Evaluation of {html.escape(str(result['run']))}</h1>
<p>Dataset: {html.escape(str(result['data']))}. The real row is the test split; generated rows
play the same pitch and effect labels. The judge gets {judge['pitch']:.1%} of held-out pitches
and {judge['effect']:.1%} of held-out effects right: the ceiling for the accuracies below.</p>
{_table(result['rows'], effects)}
{"".join(f'<p><img src="{p}" alt="{p}" style="max-width: 100%"></p>' for p in pictures)}
<p>Real and generated notes, per effect and pitch (spectrograms: log mel power).</p>
{"".join(sections)}
{_CHECK}
</body></html>
"""
  path = os.path.join(out, "report.html")
  storage.write_text(path, page)
  return path

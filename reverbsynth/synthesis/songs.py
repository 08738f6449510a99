"""Songs from notes: a MIDI file played note by note by a Synthesizer.

Every MIDI instrument (track + program) gets one latent, so a track keeps its
timbre, one effect and, for a model conditioned on instrument families, the family of
its General MIDI program (the table the SoundFont notes were labelled with). Each
distinct (track, pitch, effect, velocity label) note is generated once, in batches, then
placed at its onset to the sample: the model's held part is cut or extended to the
note's length and its released part (where a reverb tail rings) follows note-off. Notes
are overlap-added in float, scaled by velocity, and the song is normalized once so that
it never clips.
"""

import dataclasses
import os
import time

import numpy as np

from reverbsynth import storage
from reverbsynth.data.notes.note import SAMPLE_RATE, resample
from reverbsynth.data.notes.soundfont import GM_PROGRAMS
from reverbsynth.errors import UserError
from reverbsynth.progress import Progress
from reverbsynth.synthesis import outputs
from reverbsynth.synthesis.synthesizer import velocity_gains

CROSSFADE_SECONDS = 0.03   # Joins inside a note: held -> loop -> release.
SEARCH_SECONDS = 0.02      # How far a join looks for the cut that keeps the phase (>= a period).
END_FADE_SECONDS = 0.01
# Where a family is missing from a model, every other family in the order that it stands in
# for it, nearest first (by how the instrument is played and sounds); General MIDI programs
# without a family (GM_PROGRAMS lacks them: pads, synth effects, percussion, sound effects,
# orchestra hit) take the family of their program's block (_BLOCK_FAMILY).
NEAREST_FAMILIES = {
    "bass": ("guitar", "keyboard", "string", "synth_lead", "organ", "mallet", "brass", "reed",
             "vocal", "flute"),
    "brass": ("reed", "synth_lead", "organ", "string", "vocal", "flute", "keyboard", "guitar",
              "mallet", "bass"),
    "flute": ("reed", "vocal", "organ", "string", "synth_lead", "brass", "mallet", "keyboard",
              "guitar", "bass"),
    "guitar": ("keyboard", "bass", "mallet", "string", "synth_lead", "organ", "brass", "reed",
               "vocal", "flute"),
    "keyboard": ("mallet", "guitar", "organ", "synth_lead", "string", "bass", "brass", "reed",
                 "vocal", "flute"),
    "mallet": ("keyboard", "guitar", "string", "organ", "flute", "synth_lead", "vocal", "reed",
               "brass", "bass"),
    "organ": ("keyboard", "synth_lead", "reed", "string", "brass", "flute", "vocal", "mallet",
              "guitar", "bass"),
    "reed": ("brass", "flute", "organ", "synth_lead", "string", "vocal", "keyboard", "guitar",
             "mallet", "bass"),
    "string": ("vocal", "organ", "brass", "synth_lead", "reed", "flute", "keyboard", "guitar",
               "mallet", "bass"),
    "synth_lead": ("organ", "brass", "keyboard", "string", "reed", "guitar", "flute", "vocal",
                   "mallet", "bass"),
    "vocal": ("string", "flute", "organ", "reed", "brass", "synth_lead", "keyboard", "mallet",
              "guitar", "bass"),
}
_BLOCK_FAMILY = {55: "string", **{p: "string" for p in range(88, 96)},
                 **{p: "synth_lead" for p in range(96, 104)},
                 **{p: "mallet" for p in range(112, 120)},
                 **{p: "synth_lead" for p in range(120, 128)}}


@dataclasses.dataclass(frozen=True)
class Track:
  """One MIDI instrument; `number` counts from 1 in file order, as shown to users."""
  number: int
  name: str
  program: int
  is_drum: bool
  notes: tuple  # pretty_midi.Note (start, end in seconds; pitch; velocity).

  @property
  def kind(self) -> str:
    """The General MIDI instrument name of its program, or "drums"."""
    import pretty_midi
    return "drums" if self.is_drum else pretty_midi.program_to_instrument_name(self.program)

  def describe(self) -> str:
    return f"{self.number} {self.name or self.kind!r} ({self.kind}, {len(self.notes)} notes)"

  def matches(self, selector: str) -> bool:
    """Whether `selector` (a track number, or part of its name, program or class) names it."""
    if selector.isdigit():
      return int(selector) == self.number
    import pretty_midi
    names = [self.name]
    if not self.is_drum:
      names += [pretty_midi.program_to_instrument_name(self.program),
                pretty_midi.program_to_instrument_class(self.program)]
    return any(selector.lower() in n.lower() for n in names if n)


@dataclasses.dataclass
class Summary:
  notes: int = 0          # Notes played.
  unique: int = 0         # Distinct notes generated.
  transposed: int = 0     # Notes moved by octaves into the model's range.
  skipped: int = 0        # Drum notes left out.
  seconds: float = 0.0    # Audio length.
  render_seconds: float = 0.0

  def line(self) -> str:
    rtf = self.render_seconds / self.seconds if self.seconds else 0.0
    return (f"{self.notes} notes played, {self.unique} unique notes generated, "
            f"{self.transposed} transposed by octaves, {self.skipped} drum notes skipped; "
            f"{self.seconds:.1f} s of audio in {self.render_seconds:.1f} s "
            f"(real-time factor {rtf:.2f})")


def read(path) -> list:
  """The Tracks of a MIDI file that hold notes; UserError when it is not MIDI or holds none."""
  import pretty_midi
  try:
    song = pretty_midi.PrettyMIDI(str(path))
  except Exception as e:  # pretty_midi/mido raise many kinds on a bad file.
    raise UserError(f"{path} is not a readable MIDI file ({type(e).__name__}: {e})") from None
  tracks = [Track(i + 1, inst.name.strip(), inst.program, inst.is_drum,
                  tuple(sorted(inst.notes, key=lambda n: (n.start, n.pitch))))
            for i, inst in enumerate(song.instruments)]
  tracks = [t for t in tracks if t.notes]
  if not tracks:
    raise UserError(f"{path} holds no notes")
  return tracks


def split_effect_spec(spec: str) -> tuple:
  """(TRACK, NAME) of an --effect spec TRACK=NAME, split at its first '=' outside
  parentheses (effect names hold some: 'hall(room_size=0.95)'); ("", NAME) for a bare NAME."""
  depth = 0
  for i, char in enumerate(spec):
    depth += (char == "(") - (char == ")")
    if char == "=" and depth == 0:
      return spec[:i], spec[i + 1:]
  return "", spec


def _track_choices(specs, tracks, option: str, unknown) -> tuple:
  """(NAME for every track or None, {track number: NAME}) from `option`'s specs: NAME or
  TRACK=NAME; `unknown(spec, name)` is the refusal of a name it does not know (or None)."""
  everywhere, chosen = None, {}
  for spec in specs:
    selector, name = split_effect_spec(spec)
    refusal = unknown(spec, name)
    if refusal:
      raise UserError(refusal)
    if not selector:
      everywhere = name
      continue
    hits = [t for t in tracks if t.matches(selector)]
    if not hits:
      raise UserError(f"{option} {spec}: no track is {selector!r}; the tracks are "
                      + "; ".join(t.describe() for t in tracks))
    chosen.update({t.number: name for t in hits})
  return everywhere, chosen


def plan_effects(specs, tracks, known, default: str) -> dict:
  """{track number: effect name} from --effect specs: NAME (every track) or TRACK=NAME."""
  everywhere, chosen = _track_choices(
      specs, tracks, "--effect", lambda spec, name: None if name in known else
      f"the run was not trained on effect {name!r}; it knows {', '.join(known)}")
  return {t.number: chosen.get(t.number, everywhere or default) for t in tracks}


def program_family(program: int) -> str:
  """The instrument family of a General MIDI program: its family in the SoundFont notes'
  table, else that of its program block (_BLOCK_FAMILY)."""
  return GM_PROGRAMS[program][0] if program in GM_PROGRAMS else _BLOCK_FAMILY[program]


def nearest_family(family: str, known) -> str:
  """`family` if the model knows it, else its nearest stand-in among `known` (the model's
  families, at least one)."""
  return next(f for f in (family, *NEAREST_FAMILIES[family]) if f in known)


def plan_families(specs, tracks, known) -> dict:
  """{track number: (family, why)} from --family specs: NAME (every track) or TRACK=NAME,
  the rest from each track's program (`why` says how it was chosen: "program", "--family",
  or the family it stands in for); {} for a model without families (`known` empty)."""
  if not known:
    if specs:
      raise UserError("the model is not conditioned on the instrument family "
                      "(model.conditions): it plays every track with one timbre; leave out "
                      "--family")
    return {}
  everywhere, chosen = _track_choices(
      specs, tracks, "--family", lambda spec, name: None if name in known else
      f"--family {spec}: the model knows no family {name!r}; it was trained on "
      f"{', '.join(known)}")
  plan = {}
  for t in tracks:
    if t.number in chosen or everywhere:
      plan[t.number] = (chosen.get(t.number, everywhere), "--family")
      continue
    wanted = program_family(t.program)
    family = nearest_family(wanted, known)
    plan[t.number] = (family, "program" if family == wanted else
                      f"the model has no {wanted}: nearest")
  return plan


def fit_pitch(pitch: int, pitches: range) -> int:
  """`pitch` moved by whole octaves into `pitches` (a range of at least 12)."""
  while pitch < pitches.start:
    pitch += 12
  while pitch >= pitches.stop:
    pitch -= 12
  return pitch


def _join(a: np.ndarray, b: np.ndarray, overlap: int) -> np.ndarray:
  """a then b, the last `overlap` samples of a crossfaded (equal power) into b's first."""
  if overlap <= 0:
    return np.concatenate([a, b])
  t = np.linspace(0.0, np.pi / 2, overlap, dtype=np.float32)
  middle = a[-overlap:] * np.cos(t) + b[:overlap] * np.sin(t)
  return np.concatenate([a[:-overlap], middle, b[overlap:]])


def _matching_cut(audio: np.ndarray, context: np.ndarray, low: int, high: int) -> int:
  """The cut c in [low, high) where audio[c - len(context):c] correlates best with `context`:
  continuing from audio[c] after `context` keeps the waveform's phase."""
  w = len(context)
  low = max(low, w)
  if w == 0 or high <= low:
    return max(low, min(high, len(audio)))
  windows = np.lib.stride_tricks.sliding_window_view(audio[low - w:high], w)[:high - low]
  energy = np.sqrt(np.sum(np.square(windows), axis=1) * np.sum(np.square(context))) + 1e-12
  return low + int(np.argmax(windows @ context / energy))


def shape_note(audio: np.ndarray, held: int, length: int, sample_rate: int) -> np.ndarray:
  """A model note [S] (held for `held` samples, then released) played for `length` samples.

  Returns about length + S - held samples: the held part cut to `length` or, for
  longer notes, extended by repeats of its steadier second half; then the
  released part (the instrument's release and any effect tail) from note-off.
  Each join is crossfaded at the cut that best continues the waveform.
  """
  crossfade = int(CROSSFADE_SECONDS * sample_rate)
  search = int(SEARCH_SECONDS * sample_rate)
  body = audio[:held]
  while len(body) < length:  # Loop back into the held part's second half.
    start = _matching_cut(audio, body[-crossfade:], held // 2 - search, held // 2 + search)
    body = _join(body, audio[start - crossfade:held], crossfade)
  body = body[:max(length, 1)]
  overlap = min(crossfade, len(body) // 2)
  release = _matching_cut(audio, body[len(body) - overlap:], held - search, held + 1)
  out = _join(body, audio[release - overlap:], overlap)
  fade = min(int(END_FADE_SECONDS * sample_rate), len(out))
  out[len(out) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
  return out


def render(synth, tracks, effects: dict, seed: int = 0, drums: bool = False,
           batch_size: int = 32, progress: bool = False, families=None):
  """(song audio [N] float32 at synth.sample_rate before normalization, Summary).

  `effects` maps track numbers to effect names (see plan_effects), `families` to
  (family, why) for a model conditioned on families (see plan_families).
  """
  started = time.perf_counter()
  summary = Summary()
  latents = synth.latents(max(t.number for t in tracks), seed)  # Track n: row n - 1.
  played = []  # (key: (track number, pitch, effect, family, velocity label), start, length)
  velocities = []  # Each played note's MIDI velocity.
  rate = synth.sample_rate

  def layer(velocity):
    """The velocity label that plays a MIDI velocity (None: the model has no such label)."""
    if not synth.conditioned_on_velocity:
      return None
    return synth.labels.velocities[synth.labels.velocity_ids([velocity])[0]]

  for track in tracks:
    if track.is_drum and not drums:
      summary.skipped += len(track.notes)
      continue
    family = (families or {}).get(track.number, (None,))[0]
    for note in track.notes:
      pitch = fit_pitch(note.pitch, synth.pitches)
      summary.transposed += pitch != note.pitch
      start = int(round(note.start * rate))
      key = (track.number, pitch, effects[track.number], family, layer(note.velocity))
      played.append((key, start, max(int(round(note.end * rate)) - start, 1)))
      velocities.append(note.velocity)
  if not played:
    raise UserError("the MIDI file has only drum tracks: give --drums to play them")
  unique = sorted({p[0] for p in played})
  notes = dict(zip(unique, _generate(synth, latents, unique, batch_size, progress)))
  held = synth.held_samples
  longest = synth.num_samples - held + int(SEARCH_SECONDS * rate)  # After note-off.
  song = np.zeros(max(start + length for _, start, length in played) + longest, np.float32)
  for (key, start, length), gain in zip(played, velocity_gains(synth, velocities)):
    sound = shape_note(notes[key], held, length, rate)
    song[start:start + len(sound)] += gain * sound
  sounding = np.flatnonzero(song)
  song = song[:sounding[-1] + 1 if len(sounding) else 0]
  summary.notes, summary.unique = len(played), len(unique)
  summary.seconds = len(song) / rate
  summary.render_seconds = time.perf_counter() - started
  return song, summary


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenderOptions:
  """How render_file plays a song. `effects`: [TRACK=]NAME specs (see plan_effects;
  default: the model's first effect other than dry); `families`: [TRACK=]NAME specs (see
  plan_families; default: each track's program's); `sample_rate`: the WAV's (default: the
  model's, at least the dataset rate); `loudness_db`: a target RMS level; `png`: a picture
  beside the WAV."""
  effects: tuple = ()
  families: tuple = ()
  seed: int = 0
  drums: bool = False
  sample_rate: int | None = None
  bits: str = "float"
  loudness_db: float | None = None
  png: bool = False
  progress: bool = False


def render_file(tracks, synth, out, options: RenderOptions = RenderOptions()):
  """Plays `tracks` (read) with `synth` into the WAV `out`, resampled to the options' rate
  and normalized once, there: its peaks are the WAV's.

  Returns what was played, as lines for the console: each track's effect, the WAV's
  summary, the picture's path.
  """
  o = options
  wet = [e for e in synth.labels.effects if e != "dry"]
  plan = plan_effects(o.effects, tracks, synth.labels.effects, (wet or ["dry"])[0])
  families = plan_families(o.families, tracks, synth.labels.families)
  song, summary = render(synth, tracks, plan, seed=o.seed, drums=o.drums, progress=o.progress,
                         families=families)
  rate = o.sample_rate or max(synth.sample_rate, SAMPLE_RATE)
  song = outputs.normalize(resample(song, synth.sample_rate, rate), o.loudness_db)
  outputs.write_wav(out, song, rate, o.bits)
  image = os.path.splitext(out)[0] + ".png" if o.png else None
  if image:
    write_png(image, song, rate, tracks, plan, synth.pitches, o.drums)
  played = lambda t: plan[t.number] + (
      f", {families[t.number][0]} ({families[t.number][1]})" if families else "")
  lines = [f"  track {t.describe()}: " + ("skipped (drums; --drums plays them)"
                                          if t.is_drum and not o.drums else played(t))
           for t in tracks]
  return "\n".join([*lines, f"{out}: {summary.line()}"]
                   + ([f"{image}: spectrogram and notes"] if image else []))


def _generate(synth, latents, keys, batch_size: int, progress: bool) -> list:
  """Audio [S] for each (track number, pitch, effect, family, velocity label) key (the last
  two None where the model lacks the condition), generated in batches."""
  out = []
  with Progress(progress, len(keys), "note", "generating") as bar:
    for i in range(0, len(keys), batch_size):
      chunk = keys[i:i + batch_size]
      z = latents[[k[0] - 1 for k in chunk]]
      out.extend(synth.audio(z, [k[1] for k in chunk], [k[2] for k in chunk],
                             batch_size=batch_size, families=[k[3] for k in chunk],
                             velocities=[k[4] for k in chunk]))
      bar.update(len(chunk))
  return out


def write_png(path, song: np.ndarray, rate: int, tracks, effects: dict, pitches: range,
              drums: bool = False) -> None:
  """A picture of song [N] at `rate`: its log-mel spectrogram over a piano roll of the notes
  as played (one colour per track, drums only with `drums`); time in seconds, 1600 x 900 px
  whatever the song's length."""
  import librosa
  import librosa.display
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, (top, roll) = plt.subplots(2, 1, sharex=True, figsize=(16, 9), dpi=100)
  hop = max(256, -(-len(song) // 2000))  # No more frames than the picture has pixels.
  mel = librosa.feature.melspectrogram(y=song, sr=rate, n_fft=2048, hop_length=hop, n_mels=128)
  db = librosa.power_to_db(mel, ref=max(float(mel.max()), 1e-10), top_db=80.0)
  librosa.display.specshow(db, sr=rate, hop_length=hop, x_axis="s", y_axis="mel", ax=top,
                           cmap="magma")
  top.set(xlabel="", title="spectrogram (log mel, 80 dB)")
  for i, track in enumerate(t for t in tracks if drums or not t.is_drum):
    notes = track.notes
    roll.barh([fit_pitch(n.pitch, pitches) for n in notes], [n.end - n.start for n in notes],
              left=[n.start for n in notes], height=0.8, color=f"C{i % 10}",
              label=f"{track.number} {track.name or track.kind}: {effects[track.number]}")
  roll.set(xlim=(0, len(song) / rate), xlabel="time (s)", ylabel="MIDI pitch",
           title="notes as played")
  roll.legend(loc="upper right", fontsize=8)
  fig.tight_layout()
  with storage.atomic_path(path) as tmp:
    fig.savefig(tmp, format="png")
  plt.close(fig)

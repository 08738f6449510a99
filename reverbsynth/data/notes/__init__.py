"""Notes: the Note record, where notes come from, and how they are filtered."""

from reverbsynth.data.notes.note import FAMILIES, NUM_SAMPLES, QUALITIES, SAMPLE_RATE, SOURCES, VELOCITIES, Note

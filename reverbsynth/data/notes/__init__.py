"""Notes: the Note record, where notes come from (SoundFont, NSynth), and how they are filtered."""

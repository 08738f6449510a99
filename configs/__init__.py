"""Package data: effect presets, training configs and impulse responses (reverbsynth.configs)."""

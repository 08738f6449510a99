# Set-up and the common jobs. Every target makes .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench quality system-deps clean

# The default dataset, then the CPU config's first two stages (a few minutes);
# 'reverbsynth train --config cpu --resume' continues the same run to all 11 stages (~1 h).
demo: $(STAMP)
	$(BIN)/reverbsynth build-dataset --effect reverb --family bass --overwrite
	$(BIN)/reverbsynth train --config cpu --stages 2 --resume

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

# Evidence that training learns: cpu.yaml on a small bass dataset (~1 h), then f0 and reverb-tail figures.
quality: $(STAMP)
	$(BIN)/python -m tests.quality

# FluidSynth (to render SoundFont notes) is a system library.
system-deps:
	@if ldconfig -p 2>/dev/null | grep -q libfluidsynth; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing libfluidsynth3 with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfluidsynth3 >/dev/null; \
	else \
	  echo "FluidSynth is missing. Install it, then run make again:"; \
	  echo "  sudo apt-get install libfluidsynth3    (Debian/Ubuntu)"; \
	  echo "  brew install fluid-synth               (macOS)"; \
	  exit 1; \
	fi

$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info

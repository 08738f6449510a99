# Set-up and the common jobs. Every target makes .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench quality system-deps clean

# The default dataset, the ddsp config's first DEMO_STAGES stages (1: 6-8 minutes; 9: all,
# about an hour, the same run continued), then the example song rendered with reverb and
# dry, by that run and by the model shipped in the package, and the shipped model's learned
# reverb put on the dry rendering with `reverbsynth apply`.
DEMO_STAGES ?= 1
DEMO_RUN = $${REVERBSYNTH_HOME:-$$HOME/reverbsynth}/runs/ddsp-reverb-bass
demo: $(STAMP)
	$(BIN)/reverbsynth build-dataset --effect reverb --family bass --overwrite
	$(BIN)/reverbsynth train --config ddsp --stages $(DEMO_STAGES) --resume
	$(BIN)/reverbsynth render examples/bassline.mid --run $(DEMO_RUN) --effect reverb \
	  --out build/demo/bassline-reverb.wav --png --no-progress
	$(BIN)/reverbsynth render examples/bassline.mid --run $(DEMO_RUN) --effect dry \
	  --out build/demo/bassline-dry.wav --png --no-progress
	$(BIN)/reverbsynth render examples/bassline.mid --run reverbsynth/pretrained --effect reverb \
	  --out build/demo/bassline-shipped-reverb.wav --png --no-progress
	$(BIN)/reverbsynth render examples/bassline.mid --run reverbsynth/pretrained --effect dry \
	  --out build/demo/bassline-shipped-dry.wav --png --no-progress
	$(BIN)/reverbsynth apply build/demo/bassline-shipped-dry.wav --effect reverb \
	  --run reverbsynth/pretrained --out build/demo/bassline-shipped-dry-applied-reverb.wav

# Two pytest-xdist workers, each test file on one worker (its module fixtures built once): on 2
# cores the suite's subprocesses, imports and I/O overlap with the other worker's training.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# ruff, and mypy on the public modules (pyproject.toml's [tool.ruff], [tool.mypy]); .ci/run
# runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff check reverbsynth pipelines tests tools
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

# Evidence that training learns: ddsp.yaml on the SoundFont bass set (about 45 minutes), then
# the judge's pitch and effect, f0, reverb tail, Frechet, NDB and learned-reverb RT60 figures
# of real and generated notes at 16 kHz over MIDI 24-84 (tests/quality.py).
quality: $(STAMP)
	$(BIN)/python -m tests.quality

# FluidSynth (to render SoundFont notes) is a system library; Chromium (headless) is what
# tests/test_evaluation.py opens report.html in. Both come from apt-get where we are root.
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
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing chromium with apt-get (the report page's browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    || echo "chromium did not install: the browser test will be skipped"; \
	else \
	  echo "chromium is missing: the report page's browser test will be skipped"; \
	fi

$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,test,dask]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info

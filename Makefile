# Two commands: `make demo` (set up + the main job) and `make test` (set up + the test suite).
VENV ?= .venv
STAMP := $(VENV)/.cadence-installed
export HF_HUB_OFFLINE ?= 1
export MUJOCO_GL ?= egl

.PHONY: demo test bench setup

setup: $(STAMP)

# Reinstall only when the project's dependencies change; a second run starts at once.
$(STAMP): pyproject.toml tools/venv.sh
	bash tools/venv.sh $(VENV)
	touch $@

demo: $(STAMP)
	$(VENV)/bin/cadence-demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/scan.py --write docs/benchmarks.md

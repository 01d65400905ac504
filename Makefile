# blur2blur: `make demo` then `make test` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo_out
DEMO_STEPS ?= 2000

# The hand-pose app's model, where b2b-run looks for it (fetched, or built from PyPI's mediapipe 0.10.21 wheel).
HAND_MODEL := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/blur2blur/mediapipe/hand_landmarker.task

.PHONY: setup demo test clean

setup: $(VENV)/.installed $(HAND_MODEL)

# torch==2.13.0 first (a CPU wheel here), then the project with every extra that installs on this machine.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[runtime,train,export,handpose,dev]'
	touch $@

$(HAND_MODEL): | $(VENV)/.installed
	$(BIN)/b2b-run fetch-hand-model

# The main job end to end on the CPU: synthesize known blur, train a tiny deblurrer, export, deblur a video.
demo: setup
	rm -rf $(OUT) && mkdir -p $(OUT)
	$(BIN)/b2b-train synth --domain known --out $(OUT)/known --count 400 --size 128
	$(BIN)/b2b-train deblurrer --pairs $(OUT)/known --out $(OUT)/deblurrer --arch nafnet-tiny --steps $(DEMO_STEPS)
	$(BIN)/b2b-train synth --domain known --sharp skimage --out $(OUT)/blurry.mp4 --video 75
	$(BIN)/b2b-export --deblurrer $(OUT)/deblurrer/last.pt --fp16 --out $(OUT)/bundle
	$(BIN)/b2b-run --bundle $(OUT)/bundle --video $(OUT)/blurry.mp4 --app side-by-side \
		--output $(OUT)/deblurred.mp4 --stats $(OUT)/timing.json --headless
	@echo "demo done: $(OUT)/deblurred.mp4 (input | restored), $(OUT)/timing.json, bundle in $(OUT)/bundle"

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(OUT) *.egg-info

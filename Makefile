# blur2blur: `make demo` then `make test` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= demo_out
, := ,

# The hand-pose app's model, where b2b-run looks for it (fetched, or built from PyPI's mediapipe 0.10.21 wheel).
HAND_MODEL := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/blur2blur/mediapipe/hand_landmarker.task

.PHONY: setup demo test clean starter photos gpu-check

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

# The main job end to end on the CPU: the shipped starter deblurrer (trained on the broad `known` blur), an unknown
# "camera" ($(CAMERA) blur) and its converter G from unpaired images, one exported bundle, a video through
# b2b-run --app handpose, then b2b-eval and b2b-bench. `make demo VIDEO=clip.mp4` runs your own video instead.
CAMERA ?= lowlight
CONVERTER_STEPS ?= 600
DEMO_FRAMES ?= 100
VIDEO ?=
DEMO_VIDEO := $(or $(VIDEO),$(OUT)/camera.mp4)
EVAL_PAIRS := synthetic:$(CAMERA)?sharp=skimage&size=192&count=12&seed=7
step = @printf '\n==> [%s/8] %s\n' $(1) "$(2)"

demo: setup
	$(if $(VIDEO),@test -f '$(VIDEO)' || { echo "error: VIDEO=$(VIDEO): no such file" >&2; exit 2; })
	rm -rf $(OUT) && mkdir -p $(OUT) && date +%s > $(OUT)/.started
	$(call step,1,the camera ($(CAMERA) blur): its blurry images and$(,) unpaired$(,) its sharp ones)
	$(BIN)/b2b-train synth --domain $(CAMERA) --out $(OUT)/camera --count 200 --size 128 --seed 3
	$(BIN)/b2b-train synth --domain $(CAMERA) --out $(OUT)/camera-other --count 200 --size 128 --seed 4
	$(call step,2,the camera's converter G for the shipped starter deblurrer: $(CONVERTER_STEPS) steps$(,) no pairs)
	$(BIN)/b2b-train converter --blurry $(OUT)/camera/blur --sharp $(OUT)/camera-other/sharp --known synthetic:known \
		--deblurrer starter --out $(OUT)/converter --steps $(CONVERTER_STEPS)
	$(call step,3,one bundle: G then the starter$(,) verified in FP32 and FP16)
	$(BIN)/b2b-export --deblurrer starter --converter $(OUT)/converter/best.pt --fp16 \
		--max-shape 720x1280 --out $(OUT)/bundle
	$(call step,4,a blurry video of the camera)
	$(if $(VIDEO),@echo "using $(VIDEO)",$(BIN)/b2b-train synth --domain $(CAMERA) --sharp skimage --out $(OUT)/camera.mp4 --video 75)
	$(call step,5,b2b-run --app handpose over $(DEMO_VIDEO))
	$(BIN)/b2b-run --bundle $(OUT)/bundle --video $(DEMO_VIDEO) --app handpose --side-by-side --headless \
		--max-frames $(DEMO_FRAMES) --output $(OUT)/restored.mp4 --records $(OUT)/hands.jsonl \
		--stats $(OUT)/timing.json > $(OUT)/timing.txt
	@cat $(OUT)/timing.txt
	$(call step,6,b2b-eval deblur: new pairs of the camera (fresh crops and blur))
	$(BIN)/b2b-eval deblur --bundle $(OUT)/bundle --pairs '$(EVAL_PAIRS)' --grid $(OUT)/grids \
		--json $(OUT)/eval.json > $(OUT)/eval.md
	@cat $(OUT)/eval.md
	$(call step,7,b2b-bench: what a frame costs)
	$(BIN)/b2b-bench --bundle $(OUT)/bundle --sizes 320x240,640x360 --frames 10 --json $(OUT)/bench.json \
		> $(OUT)/bench.md
	@cat $(OUT)/bench.md
	$(call step,8,one page with all of it: $(OUT)/report/index.html)
	$(BIN)/b2b-eval report --out $(OUT)/report --eval $(OUT)/eval.json --grids $(OUT)/grids \
		--checkpoint $(OUT)/converter/best.pt --stats $(OUT)/timing.json --bench $(OUT)/bench.json \
		--video $(OUT)/restored.mp4
	@printf '\ndemo done in %s s. Look at:\n' $$(( $$(date +%s) - $$(cat $(OUT)/.started) ))
	@echo "  $(OUT)/report/index.html   all of it on one page (open it in a browser; copy the folder anywhere)"
	@echo "  $(OUT)/restored.mp4   the video: input | restored, with the hands found ($(OUT)/hands.jsonl)"
	@echo "  $(OUT)/grids/         per image: blurry | deblurrer alone | with converter | sharp"
	@echo "  $(OUT)/eval.md        the PSNR/SSIM table above (every figure in eval.json)"
	@echo "  $(OUT)/timing.txt     b2b-run's timing report (timing.json); $(OUT)/bench.md: b2b-bench's table"
	@echo "  $(OUT)/bundle/        the deployable bundle: b2b-export inspect $(OUT)/bundle"
	$(if $(VIDEO),,@echo "The bundled photos hold no hands: make demo VIDEO=clip.mp4 runs a video of your own.")

# The shipped starter deblurrer, reproduced (about 2.5 hours on one CPU core; run again to resume), in four stages
# on packaged content: 16000 steps on scikit-image's photos and flat dead leaves, 8000 on textured dead leaves
# (leaves filled with those photos' textures), 6000 on 96-pixel crops of the photographs Debian's wallpaper packages
# install (`photos`, sharp tiles only) with some of the earlier content, then 3000 with a sixth of the pairs `still`
# (no blur: a sharp frame stays as it is); the broad `known` blur, nafnet-w16, packed as FP16.
STARTER_RUN ?= runs/starter
starter: setup photos
	$(BIN)/b2b-train synth --domain known --sharp skimage,deadleaves:48 --out runs/starter-pairs --count 4000 \
		--size 128 --seed 0
	$(BIN)/b2b-train deblurrer --pairs runs/starter-pairs --out $(STARTER_RUN) --arch nafnet-w16 --rotate \
		--steps 16000 --lr 1.5e-3 --warmup 200 --eval-every 2000 $(if $(wildcard $(STARTER_RUN)/last.pt),--resume)
	$(BIN)/b2b-train pack $(STARTER_RUN)/last.pt --out runs/starter-stage1.pt --force
	$(BIN)/b2b-train synth --domain known --sharp skimage,texleaves:64,deadleaves:16 --out runs/starter2-pairs \
		--count 4000 --size 128 --seed 10
	$(BIN)/b2b-train deblurrer --pairs runs/starter2-pairs --out $(STARTER_RUN)2 --init runs/starter-stage1.pt --rotate \
		--steps 8000 --lr 1e-3 --warmup 100 --eval-every 2000 $(if $(wildcard $(STARTER_RUN)2/last.pt),--resume)
	$(BIN)/b2b-train pack $(STARTER_RUN)2/last.pt --out runs/starter-stage2.pt --force
	$(BIN)/b2b-train synth --domain known --sharp photos,texleaves:64,skimage --out runs/starter3-pairs \
		--count 6000 --size 128 --seed 20
	$(BIN)/b2b-train deblurrer --pairs runs/starter3-pairs --out $(STARTER_RUN)3 --init runs/starter-stage2.pt --rotate \
		--steps 6000 --crop 96 --lr 1e-3 --warmup 100 --eval-every 1000 $(if $(wildcard $(STARTER_RUN)3/last.pt),--resume)
	$(BIN)/b2b-train pack $(STARTER_RUN)3/last.pt --out runs/starter-stage3.pt --force
	$(BIN)/b2b-train synth --domain still --sharp photos,texleaves:64,skimage --out runs/still-pairs --count 1200 \
		--size 128 --seed 30
	rm -rf runs/starter4-pairs && mkdir -p runs/starter4-pairs/blur runs/starter4-pairs/sharp
	for side in blur sharp; do cp -al runs/starter3-pairs/$$side runs/starter4-pairs/$$side/known && \
		cp -al runs/still-pairs/$$side runs/starter4-pairs/$$side/still || exit 1; done
	$(BIN)/b2b-train deblurrer --pairs runs/starter4-pairs --out $(STARTER_RUN)4 --init runs/starter-stage3.pt --rotate \
		--steps 3000 --crop 96 --lr 5e-4 --warmup 100 --eval-every 1000 $(if $(wildcard $(STARTER_RUN)4/last.pt),--resume)
	$(BIN)/b2b-train pack $(STARTER_RUN)4/last.pt --out weights/starter.pt --force

# The photographs of `--sharp photos` (data/blur/photos.csv names them): Debian's wallpaper packages, installed as root.
PHOTO_PACKAGES := $(shell grep -v '^\#' data/blur/photos.csv | tail -n +2 | cut -d, -f2 | sort -u)
photos:
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q --no-install-recommends $(PHOTO_PACKAGES) >/dev/null || \
		{ apt-get update -q && apt-get install -y -q --no-install-recommends $(PHOTO_PACKAGES); }; \
	elif [ "$$(dpkg-query -W -f='$${Status}\n' $(PHOTO_PACKAGES) 2>/dev/null | grep -c 'ok installed')" != \
		"$(words $(PHOTO_PACKAGES))" ]; then \
		echo "make starter trains on Debian's photographs: run  sudo apt-get install -y $(PHOTO_PACKAGES)"; exit 1; fi

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# On a machine with an NVIDIA GPU: TensorRT's tests, an FP16 engine of a NAFNet-w32 bundle verified against ONNX
# Runtime, b2b-bench at 720p and b2b-run with TensorRT; the report goes to $(GPU_OUT)/report.md (about 5 minutes).
GPU_OUT ?= gpu_check
gpu-check: setup
	$(BIN)/python -m pip install --quiet -e '.[trt]'
	$(BIN)/python bench/gpu_check.py --out $(GPU_OUT)

clean:
	rm -rf $(VENV) $(OUT) *.egg-info

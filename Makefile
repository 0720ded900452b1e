# The two commands of the README. Both set up the environment first
# (tools/setup_env.sh: idempotent, seconds when nothing changed).
#
#   make demo   generate data, train the demo detector on the CPU, print COCO AP
#   make test   run the whole test suite
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/demo/retinanet_r50w16-gcb_fpn64_1xb4-400it_shapes-128.py
DEMO_WORK_DIR ?= work_dirs/demo
# the training seed (the data set is fixed: make data's --seed=0)
DEMO_SEED ?= 0
# the demo config's data_root
DEMO_DATA := data/shapes
# pytest-xdist workers; 0 runs the tests in one process
TEST_WORKERS ?= 2
PYTEST_ARGS ?=
# what `make test` runs (a sub-directory while working on one area)
TESTS ?= tests

.PHONY: env data demo test

env:
	MMCTX_VENV=$(VENV) bash tools/setup_env.sh

data: env
	$(PY) tools/dataset_converters/make_shapes.py --out $(DEMO_DATA) \
		--num-train 200 --num-val 50 --img-size 128 --seed=0

# Training (validation left to the test step) ends with a checkpoint;
# tools/test.py evaluates it and prints the COCO bbox AP table.
demo: data
	@start=$$(date +%s); \
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) tools/train.py $(DEMO_CONFIG) \
		--work-dir $(DEMO_WORK_DIR) \
		--cfg-options train_cfg.val_begin=1000000 randomness.seed=$(DEMO_SEED) && \
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) tools/test.py $(DEMO_CONFIG) \
		$$(cat $(DEMO_WORK_DIR)/last_checkpoint) --work-dir $(DEMO_WORK_DIR); \
	rc=$$?; echo "make demo: training and evaluation took $$(( $$(date +%s) - start )) s"; \
	exit $$rc

# pytest exits with 5 when it collects no test: that is a failure too.
test: env
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS)) \
		$(PYTEST_ARGS) $(TESTS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$rc

# make bench-gpu: on a machine with an NVIDIA GPU, the CUDA environment
# (tools/setup_env_cuda.sh -> .venv-cuda), the OCNet Table 4 module table, every
# block beside its peers with the fused / explicit attention sweep, the
# training / inference cost of each paper's configs and a one-iteration fp16
# AMP check, reported in docs/benchmarks/cuda_<device>.{md,csv} (see
# docs/benchmarks/README.md). Each step is skipped when its results exist.
#   STEPS=env,modules,peers,cost,amp   the steps to run (a subset, in this order)
#   FORCE=1                            re-run steps whose results exist
#   DRY_RUN=1                          every step on the CPU at tiny sizes, nothing
#                                      installed, results in work_dirs/bench_gpu_dry
#   BENCH_ARGS="--configs ocnet"       more options of tools/analysis_tools/bench_gpu.py
STEPS ?= env,modules,peers,cost,amp
DRY_RUN ?= 0
FORCE ?= 0
CUDA_VENV ?= $(CURDIR)/.venv-cuda
# the interpreter that starts bench-gpu (it re-runs itself in CUDA_VENV after the env step)
BENCH_PYTHON ?= python3
BENCH_ARGS ?=

.PHONY: bench-gpu
bench-gpu: $(if $(filter 1,$(DRY_RUN)),env)
	$(if $(filter 1,$(DRY_RUN)),OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY),$(BENCH_PYTHON)) \
		tools/analysis_tools/bench_gpu.py --steps $(STEPS) --venv $(CUDA_VENV) \
		$(if $(filter 1,$(DRY_RUN)),--dry-run) $(if $(filter 1,$(FORCE)),--force) $(BENCH_ARGS)

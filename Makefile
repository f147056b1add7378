# Thin aliases; the README's two commands are `make study` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= small
# The CPU wheel of torch lies on disk on the project's machines; a bare `torch` would pull
# a multi-GB CUDA build. On a GPU machine: make setup TORCH="torch>=2.1".
TORCH  ?= torch==2.13.0

.PHONY: setup study test lab bench clean reference mmf-env

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(PY)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"

study: setup
	$(VENV)/bin/vlstudy study --profile $(PROFILE)

# Two test processes (pytest-xdist), one file each at a time: the tests' runs take one thread,
# and the smoke notebooks share one outputs folder, where a run is trained once (its lock).
test: setup
	TQDM_DISABLE=1 $(PY) -m pytest tests --nbval-lax --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -n 2 --dist loadfile

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(VENV)/bin/vlstudy bench loader --preset $(PROFILE)

clean:
	rm -rf outputs/*/ $(VENV)

reference: setup
	rm -rf tests/reference && VLSTUDY_OUTPUT_ROOT=$$(mktemp -d) TQDM_DISABLE=1 \
	    $(VENV)/bin/vlstudy study --profile smoke --reference tests/reference

# MMF 1.0.0rc10, the paper's code, for tests/test_mmf_parity.py: it needs Python 3.8, torch 1.5
# and transformers 2.x, so it gets an environment of its own (~1 GB of downloads). Only what
# importing mmf.models.visual_bert / vilbert needs; mmf itself without its pinned extras.
PYTHON38 ?= $(shell p=$$(pyenv prefix 3.8 2>/dev/null) && echo $$p/bin/python3.8 || command -v python3.8)
mmf-env:
	test -n "$(PYTHON38)" || { echo "mmf-env needs a Python 3.8 (PYTHON38=...)"; exit 1; }
	$(PYTHON38) -m venv .mmf-env
	.mmf-env/bin/pip install -q torch==1.5.0 torchvision==0.6.0 torchtext==0.5.0 transformers==2.3.0 \
	    omegaconf==2.0.1rc4 "numpy<1.24" lmdb==1.4.1 demjson==2.2.4 scikit-learn tqdm requests
	.mmf-env/bin/pip install -q --no-deps mmf==1.0.0rc10

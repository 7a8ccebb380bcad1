# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0

.PHONY: demo test lint examples gallery docs clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU wheel first: a bare `torch` requirement would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e '.[torch,dev,dask,docs,datasets,export]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py --out runs/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the seed experiments (examples/*.py), each writing PNGs/GIFs under runs/examples/<name>/
EXAMPLES := ring_dimensions spiral regularisation initialisations turnpike turnpike_claim square_1d morse invertible mlp_vs_resnet training_dynamics emsa_sin real_data

examples: $(VENV)/.installed
	for e in $(EXAMPLES); do $(PY) examples/$$e.py || exit 1; done

# the gallery (README, docs, tutorials): rerun the examples it shows and shrink their figures into docs/gallery/
gallery: $(VENV)/.installed
	$(PY) examples/make_gallery.py

# the documentation site (MkDocs): tutorials generated from examples/, API reference from the docstrings
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) runs build site *.egg-info

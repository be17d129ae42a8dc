# ddpayne: the two commands of the README's quick start, and a few more.
PYTHON ?= python3
PIP = $(PYTHON) -m pip
PYTEST_ARGS ?=

.PHONY: install demo test docs bench clean

install:
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[all]"
	# PySME (hydrogen lines) without its astropy<8 / pandas<3 pins; its other requirements come with [all]
	$(PIP) install --no-deps pysme-astro==1.2.0
	$(PIP) install -e examples/ddpayne-boss

demo: install
	ddpayne demo --out demo-output

test: install
	$(PYTHON) -m pytest $(PYTEST_ARGS)

docs:
	$(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html

bench:  # a smoke run of the training benchmarks; each full measurement's command is in docs/performance.rst
	QUICK=1 DEVICE=cpu OUT=bench-output bash benchmarks/gpu_checks.sh

clean:
	rm -rf build dist *.egg-info docs/_build demo-output bench-output

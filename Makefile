# Front door of the book. `make html` builds the website, `make test` runs every check.
# Both create the virtual environment in .venv and install everything on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NOTEBOOKS := $(wildcard chapters/*.ipynb) $(wildcard exercises/[0-9]*.ipynb) course.ipynb

.PHONY: install html pdf site test test-code test-book test-lib test-notebooks test-site test-pdf browser execute student nbgrader lab bench clean

# Notebooks run in the book's numerical environment (dropoutbook/environment.py): the Jupyter
# kernel 'dropoutbook', installed into .venv below, carries its variables (kernel instruction sets
# pinned, one thread), and every notebook names it in its metadata, so `jupyter execute`,
# nbval and JupyterLab all start it. The library tests use small tensors and run on two workers:
# one intra-op thread each avoids threads spinning against each other (a 5-10x CPU cost).
test-lib: export OMP_NUM_THREADS := 1

install: $(STAMP)

# constraints.txt pins every package, torch to the CPU wheel 2.13.0 (no CUDA download). The
# installer is uv (pinned in constraints.txt), which installs the ~180 packages in seconds where pip
# takes minutes; it reads no pip configuration, so the local wheel folders that pip is configured
# with (find-links, e.g. where the CPU build of torch lies) are passed to it. `INSTALLER=pip make
# install` uses pip instead; both install the same pinned versions.
INSTALLER ?= uv
FIND_LINKS := $(sort $(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))

$(STAMP): pyproject.toml constraints.txt dropoutbook/environment.py
	$(PYTHON) -m venv $(VENV)
ifeq ($(INSTALLER),uv)
	$(PY) -m pip install --quiet -c constraints.txt uv
	$(BIN)/uv pip install --quiet --python $(PY) $(addprefix --find-links ,$(FIND_LINKS)) -c constraints.txt -e '.[test]'
else
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
endif
	$(PY) -m dropoutbook install-kernel --prefix $(VENV)
	touch $(STAMP)

html: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Open _build/html/index.html in a browser."

test-lib: $(STAMP)
	$(PY) -m pytest -q -n 2 tests --doctest-modules dropoutbook

# Two workers; --dist loadscope keeps every cell of a notebook in one worker, in order, in one kernel.
test-notebooks: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadscope --nbval $(NOTEBOOKS) --nbval-sanitize-with nbval_sanitize.cfg

# The whole book as one PDF, without solutions: the single-page HTML build (it reuses the html
# build's doctrees) printed by headless Chromium once MathJax has typeset it. `make html` afterwards
# ships it as book.pdf and links it from every page's download menu.
pdf: $(STAMP) browser
	$(BIN)/jupyter-book build . --builder singlehtml --warningiserror --nitpick --keep-going -q
	$(PY) -m tests_site.printpdf _build/singlehtml _build/pdf/book.pdf

# The site as it is published: the PDF first, then the html build that ships and links it.
site: pdf
	$(MAKE) --no-print-directory html

test-pdf: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests_site/test_pdf.py

# The built site in a real browser (tests_site/test_browser.py): every page at 1400 and 390 px in
# headless Chromium, driven by Selenium through the Debian chromedriver (nothing is downloaded).
test-site: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider tests_site/test_browser.py

# Chromium and its driver from the Debian packages, installed when missing (as root, or with sudo).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; fi

# `make test` runs every check. The machine has two cores and the checks are independent, so three
# streams run at once (output kept together per stream): the library tests, the notebooks under
# nbval, and the strict site build then the browser test. Each alone leaves a core idle part of the
# time (the build is single-threaded, the last tests and notebooks run on one worker); together
# they keep both busy. Before them, the Python environment and the browser (network-bound
# downloads) are installed at the same time.
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target install browser
	$(MAKE) --no-print-directory -j3 --output-sync=recurse test-lib test-notebooks test-book

test-code: $(STAMP)
	$(MAKE) --no-print-directory test-lib
	$(MAKE) --no-print-directory test-notebooks

test-book: $(STAMP) browser
	$(MAKE) --no-print-directory html
	$(MAKE) --no-print-directory test-site

# Re-execute every notebook in place (after a library change), then refresh the student copies.
execute: $(STAMP)
	$(BIN)/jupyter-execute --inplace $(NOTEBOOKS)
	$(MAKE) student

student: $(STAMP)
	$(PY) -m dropoutbook.exercises exercises exercises/student

# nbgrader source versions of the exercise notebooks, one assignment per chapter (page "Using the
# exercises in a course"); copy _build/nbgrader/source into a course directory.
nbgrader: $(STAMP)
	$(PY) -m dropoutbook.exercises --nbgrader exercises _build/nbgrader/source

# JupyterLab from the book's environment; the notebooks name the kernel 'dropoutbook', so it is used.
lab: $(STAMP)
	$(BIN)/jupyter-lab

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf _build .pytest_cache .hypothesis

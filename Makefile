# The course's commands. `make book` and `make test` each install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# nbgrader and jupyter-book call other tools of the environment by name.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: book test lint release check-release student-branch system-packages clean

# The virtual environment, rebuilt when the requirements change.
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -c "import torch, torchvision; print('torch', torch.__version__, '/ torchvision', torchvision.__version__)"
	touch $@

## book: build the book into _build/html (chapters run once, then come from the cache)
book: $(BIN)/.installed
	$(BIN)/jupyter-book build . --warningiserror --keep-going

## test: run the whole test suite (installs Chromium for the browser test and bubblewrap for the grader if missing)
# One pytest-xdist worker per core, each module (each lab's nbgrader run) on one worker,
# one torch thread per worker: on 2 cores the suite takes 15 to 19 minutes, the book's build included.
JOBS ?= $(shell nproc)
test: $(BIN)/.installed system-packages lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest --numprocesses $(JOBS) --dist loadgroup

## lint: ruff's checks and formatting (configured in pyproject.toml); `ruff format .` fixes the latter
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## release: regenerate the book's lab pages from solutions/ (authors, after editing a lab)
release: $(BIN)/.installed
	$(BIN)/python -m tools.release

## check-release: fail if a lab page in book/ is older than its solution notebook
check-release: $(BIN)/.installed
	$(BIN)/python -m tools.release --check

# Debian's packages the tests need: Chromium and its WebDriver (the test that opens the built book) and
# bubblewrap (the sandbox every graded submission runs in, python -m coursepkg grade).
system-packages:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v bwrap >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver bubblewrap >/dev/null; \
	fi

clean:
	rm -rf _build release submitted autograded feedback gradebook.db .coursepkg-grading

## student-branch: commit HEAD minus solutions/ and tests/ to the launch branch of _config.yml
student-branch: $(BIN)/.installed
	$(BIN)/python -m tools.release --student-branch

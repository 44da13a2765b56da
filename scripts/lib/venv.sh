# shellcheck shell=bash
# Sourced by scripts/demo and scripts/test: the Python virtual environment with Dask that the
# demo runs and the tests start clusters from. The pinned versions live here and nowhere else.
#
# ensure_dask_venv sets and exports AFTERGLOW_DASK_VENV (default ~/.cache/afterglow-venv, where
# tests/src/dask.rs looks too) and installs dask, distributed and prometheus_client from PyPI
# into it when it has no `dask` yet.

ensure_dask_venv() {
    export AFTERGLOW_DASK_VENV="${AFTERGLOW_DASK_VENV:-$HOME/.cache/afterglow-venv}"
    [ -x "$AFTERGLOW_DASK_VENV/bin/dask" ] && return 0
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null && command -v apt-get >/dev/null; then
        echo "==> installing Debian's python3-venv (python3 -m venv needs it)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    echo "==> installing dask, distributed and prometheus_client into $AFTERGLOW_DASK_VENV"
    python3 -m venv "$AFTERGLOW_DASK_VENV"
    "$AFTERGLOW_DASK_VENV/bin/pip" install --quiet --disable-pip-version-check \
        "dask==2026.8.0" "distributed==2026.8.0" "prometheus_client==0.26.0"
}

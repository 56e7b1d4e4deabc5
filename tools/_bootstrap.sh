# Sourced by tools/test, tools/demo and tools/bench: create or reuse the project's virtual
# environment (.venv, or $SLOB_VENV) and install slob with the vendor pins.
# Re-installs only when setup.cfg, pyproject.toml or vendor/requirements.txt
# changed since the last install (a stamp file holds their hash).
set -euo pipefail

SLOB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLOB_VENV=${SLOB_VENV:-"$SLOB_ROOT/.venv"}
extras=${1:-}
# One extra or several, comma-separated (tools/bench: test,bench).
for _extra in ${extras//,/ }; do
    case "$_extra" in
        test|bench) ;;
        *) echo "tools/_bootstrap.sh: unknown extras '$extras' (callers pass \"\", or test and/or bench, comma-separated)" >&2; exit 2 ;;
    esac
done

pick_python() {
    for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "slob needs Python 3.10 or newer with venv; none found on PATH (set PYTHON=...)." >&2
    return 1
}

if [ ! -x "$SLOB_VENV/bin/python" ]; then
    py=$(pick_python)
    echo "== creating virtual environment $SLOB_VENV with $py" >&2
    "$py" -m venv "$SLOB_VENV"
fi

stamp="$SLOB_VENV/.slob-install-${extras:-base}"
target="$SLOB_ROOT"
[ -n "$extras" ] && target="$SLOB_ROOT[$extras]"
want=$(cat "$SLOB_ROOT/setup.cfg" "$SLOB_ROOT/pyproject.toml" "$SLOB_ROOT/vendor/requirements.txt" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "== installing slob${extras:+[$extras]} and the pinned ibapi into $SLOB_VENV" >&2
    pip=("$SLOB_VENV/bin/python" -m pip --disable-pip-version-check -q)
    "${pip[@]}" install --upgrade pip >/dev/null
    # Hash-checked install of IB's client first; the editable install then finds it satisfied.
    "${pip[@]}" install --require-hashes -r "$SLOB_ROOT/vendor/requirements.txt"
    "${pip[@]}" install -e "$target"
    echo "$want" > "$stamp"
fi
export PATH="$SLOB_VENV/bin:$PATH"

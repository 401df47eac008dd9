# shellcheck shell=bash disable=SC2154
# Shared by local.sh and slurm_local.sh (sourced; they set `repo`, `log` and `die` first).

# resolve_msd PATH_OR_EMPTY: prints the msd binary's absolute path (default target/release/msd,
# else target/debug/msd).
resolve_msd() {
    local msd=$1 candidate
    if [ -z "$msd" ]; then
        for candidate in "$repo/target/release/msd" "$repo/target/debug/msd"; do
            if [ -x "$candidate" ]; then msd=$candidate; break; fi
        done
    fi
    [ -n "$msd" ] || die "no msd binary: build one (cargo build --release -p msd-cli) or pass --msd PATH"
    [ -x "$msd" ] || die "msd binary '$msd' does not exist or is not executable"
    echo "$(cd "$(dirname "$msd")" && pwd)/$(basename "$msd")"
}

# workflow_venv: puts a venv with workflow/requirements.txt first on PATH. MSD_WORKFLOW_VENV names
# one to use as it is; otherwise it is ~/.cache/msd/workflow-venv-HASH, kept outside the clone (so
# a fresh CI clone reuses it) and made anew when requirements.txt changes. uv installs the ~60
# packages in about a minute (pip takes 3-4 on a busy 2-core machine); pip is the fallback.
workflow_venv() {
    local req="$repo/workflow/requirements.txt" req_hash venv
    req_hash=$(sha256sum "$req" | cut -c1-16)
    if [ -n "${MSD_WORKFLOW_VENV:-}" ]; then
        venv=$MSD_WORKFLOW_VENV
        [ -x "$venv/bin/snakemake" ] || die "MSD_WORKFLOW_VENV=$venv has no bin/snakemake (pip install -r workflow/requirements.txt there)"
    else
        venv=${XDG_CACHE_HOME:-$HOME/.cache}/msd/workflow-venv-$req_hash
        if [ "$(cat "$venv/.msd-requirements" 2>/dev/null)" != "$req_hash" ]; then
            log "creating the venv $venv (workflow/requirements.txt)"
            command -v python3 >/dev/null || die "python3 is needed (apt-get install python3 python3-venv)"
            python3 -m venv --clear "$venv" || die "python3 -m venv $venv failed (apt-get install python3-venv?)"
            if "$venv/bin/pip" install -q --no-compile uv \
                && "$venv/bin/uv" pip install -q --python "$venv/bin/python" -r "$req"; then
                :
            else
                log "uv did not install the requirements; trying pip"
                "$venv/bin/pip" install -q --no-compile -r "$req" || die "pip install -r $req failed"
            fi
            echo "$req_hash" > "$venv/.msd-requirements"
        fi
    fi
    export PATH="$venv/bin:$PATH"
}

# shellcheck shell=bash
# backwatch.sh: report backups from bash scripts (seed 000 API). No Python needed.
#
#   source "$(backwatch shell-lib --path)"      # or a copy of this file
#   metrics_backup_start "plex" "Plex Media Server backup" "/mnt/backups/plex"
#   metrics_update_status "running" "Archiving the database"
#   metrics_file_backup_complete "/mnt/backups/plex/db.tar" "1048576" "success"
#   metrics_backup_complete "success" "Backup completed successfully"
#
# Every call rewrites $METRICS_DIR/<service>_status.json atomically (temp file + mv). When
# BACKWATCH_URL is set, every call is also reported to the server with curl
# (BACKWATCH_TOKEN authenticates). A report the server cannot take now is spooled to
# BACKWATCH_SPOOL_DIR (the format of backwatch/spool.py) and delivered, in order, before
# the next report or by `backwatch spool flush`.
#
# The functions never fail and never stop the calling script, even under
# `set -euo pipefail`, an ERR trap, a read-only directory, bad arguments or a missing
# curl: they always return 0 and write warnings to stderr only (BACKWATCH_QUIET=1: none).
#
# Environment (read on every call):
#   METRICS_DIR               status files (default ~/.local/state/backwatch/status)
#   BACKWATCH_URL             server, e.g. http://backup-host:5001 (unset: no reporting)
#   BACKWATCH_TOKEN           API token with the ingest scope
#   BACKWATCH_TOKEN_FILE      a file holding it, when BACKWATCH_TOKEN is unset (secrets)
#   BACKWATCH_SPOOL_DIR       spool (default $XDG_CACHE_HOME/backwatch/spool, ~/.cache/…)
#   BACKWATCH_TIMEOUT         seconds a request may take (default 5)
#   BACKWATCH_RETRY_SECONDS   after a failed attempt, calls spool without trying the
#                             server for this long (default 30); metrics_backup_complete
#                             always tries
#   BACKWATCH_SPOOL           0: drop (with a warning) what cannot be delivered now
#   BACKWATCH_QUIET           1: no warnings
#
# Speed: without a server a call starts no subshell, date, jq or python, only the `mv`
# of the status file; the clock is $EPOCHREALTIME and printf '%(…)T'. Needs bash >= 4.4
# (5.0+ for sub-second times); an older bash only gets a warning.

# Nothing below runs at `source` time except these default assignments: sourcing is
# always safe, even under `set -euo pipefail`, and sourcing twice keeps the state.
: "${_BW_SERVICE=}" "${_BW_JOB=}" "${_BW_SFILE=}" "${_BW_RUN_ID=}" "${_BW_START=}"
: "${_BW_START_S=0}" "${_BW_START_ISO=}" "${_BW_SERVICE_J=}" "${_BW_DESC_J=}"
: "${_BW_PATH_J=}" "${_BW_STATUS_J=}" "${_BW_MSG_J=}" "${_BW_FILES=0}" "${_BW_BYTES=0}"
: "${_BW_TRACKED=0}" "${_BW_WARNED= }" "${_BW_LAST_NS=0}" "${_BW_J=}" "${_BW_CODE=}" "${_BW_REFUSED=}"
: "${_BW_NOW=}" "${_BW_NOW_S=0}" "${_BW_FRAC=000000}" "${_BW_HOST_J=}" "${_BW_ANSWER=}"

_BW_TEXT_MAX=4096   # bytes kept of a message, description or path (the server's limit)
_BW_NAME_MAX=4000   # bytes kept of a file name (the server takes 4096 characters)

# ---------------------------------------------------------------------------------------
# Public API (seed 000). Each wrapper isolates the caller's shell options: `local -`
# restores them on return, and everything inside runs with errexit, nounset, errtrace,
# xtrace, noglob, noclobber, allexport and pipefail off, so nothing here can end the
# caller's script or fire its ERR trap.

if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
    metrics_backup_start() { local -; set +aeEuxfCT +o pipefail; _bw_call _bw_start "$@" || :; return 0; }
    metrics_update_status() { local -; set +aeEuxfCT +o pipefail; _bw_call _bw_update "$@" || :; return 0; }
    metrics_file_backup_complete() { local -; set +aeEuxfCT +o pipefail; _bw_call _bw_file "$@" || :; return 0; }
    metrics_backup_complete() { local -; set +aeEuxfCT +o pipefail; _bw_call _bw_complete "$@" || :; return 0; }
    metrics_get_status() { local -; set +aeEuxfCT +o pipefail; _bw_call _bw_get_status "$@" || :; return 0; }
    metrics_list_services() { local -; set +aeEuxfCT +o pipefail; _bw_call _bw_list "$@" || :; return 0; }
else # `local -` (which keeps the caller's options safe) needs bash 4.4: do nothing, say so
    _bw_old_bash() {
        [[ -n ${_BW_OLD_SAID-} ]] || printf 'backwatch: backwatch.sh needs bash >= 4.4 (this is %s); not reporting\n' "$BASH_VERSION" >&2
        _BW_OLD_SAID=1
        return 0
    }
    metrics_backup_start() { _bw_old_bash; }
    metrics_update_status() { _bw_old_bash; }
    metrics_file_backup_complete() { _bw_old_bash; }
    metrics_backup_complete() { _bw_old_bash; }
    metrics_get_status() { _bw_old_bash; }
    metrics_list_services() { _bw_old_bash; }
fi

# Legacy names (seed 000 "Legacy Compatibility"): same arguments, same behaviour.
metrics_init() { metrics_backup_start "$@"; }
metrics_status_update() { metrics_update_status "$@"; }
metrics_add_file() { metrics_file_backup_complete "$@"; }
metrics_complete_backup() { metrics_backup_complete "$@"; }

# ---------------------------------------------------------------------------------------
# Plumbing

# _bw_call FUNC ARGS…: byte semantics (LC_ALL=C), a sane IFS and glob options, then FUNC.
_bw_call() {
    local LC_ALL=C IFS=$' \t\n' _bw_ng=0 _bw_fg=0 _bw_nc=0 _bw_ncg=0
    shopt -q nullglob || { _bw_ng=1; shopt -s nullglob; }
    shopt -q failglob && { _bw_fg=1; shopt -u failglob; }
    shopt -q nocasematch && { _bw_nc=1; shopt -u nocasematch; }
    shopt -q nocaseglob && { _bw_ncg=1; shopt -u nocaseglob; }
    "$@"
    ((_bw_ng)) && shopt -u nullglob
    ((_bw_fg)) && shopt -s failglob
    ((_bw_nc)) && shopt -s nocasematch
    ((_bw_ncg)) && shopt -s nocaseglob
    return 0
}

_bw_warn() {
    [[ ${BACKWATCH_QUIET-} == 1 ]] || printf 'backwatch: %s\n' "$1" >&2
    return 0
}

# _bw_warn_once KEY MESSAGE: once per shell (and per subshell) for each KEY.
_bw_warn_once() {
    [[ $_BW_WARNED == *" $1 "* ]] && return 0
    _BW_WARNED+="$1 "
    _bw_warn "$2"
}

# _bw_clock: _BW_NOW (epoch seconds with microseconds, as JSON number text), _BW_NOW_S.
_bw_clock() {
    if [[ -n ${EPOCHREALTIME-} ]]; then
        _BW_NOW=${EPOCHREALTIME/[!0-9]/.}
        _BW_NOW_S=${_BW_NOW%%.*}
        _BW_FRAC=${_BW_NOW#*.}000000
        _BW_FRAC=${_BW_FRAC:0:6}
    else
        printf -v _BW_NOW_S '%(%s)T' -1
        _BW_NOW=$_BW_NOW_S
        _BW_FRAC=000000
    fi
}

# _bw_iso SECONDS → _BW_J: local time, ISO 8601 with a colon in the offset.
_bw_iso() {
    local t
    printf -v t '%(%Y-%m-%dT%H:%M:%S%z)T' "$1"
    _BW_J="${t:0:${#t}-2}:${t:${#t}-2}"
}

# Valid UTF-8 sequences (RFC 3629), as a bash ERE over bytes (LC_ALL=C).
_BW_UTF8_RE=$'^([\x01-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf][\x80-\xbf]|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf][\x80-\xbf]|[\xf1-\xf3][\x80-\xbf][\x80-\xbf][\x80-\xbf]|\xf4[\x80-\x8f][\x80-\xbf][\x80-\xbf])*'

# The start of a multi-byte sequence that breaks off before its end.
_BW_UTF8_CUT_RE=$'^(\xe0[\xa0-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]|\xed[\x80-\x9f]|\xf0[\x90-\xbf][\x80-\xbf]?|[\xf1-\xf3][\x80-\xbf][\x80-\xbf]?|\xf4[\x80-\x8f][\x80-\xbf]?|[\xc2-\xf4])'

# _bw_esc TEXT [MAX_BYTES] → _BW_J: TEXT as the inside of a JSON string. Keeps the last
# MAX_BYTES (prefixed with "…"), escapes quotes, backslashes and control characters, and
# replaces what is not valid UTF-8 with U+FFFD exactly as Python's decode("utf-8",
# "replace") does. Cheap for plain ASCII: each step runs only when needed.
_bw_esc() {
    local s=$1 max=${2:-$_BW_TEXT_MAX} out good c i
    if ((${#s} > max)); then
        s=${s:${#s}-max}
        while [[ $s == [$'\x80'-$'\xbf']* ]]; do s=${s:1}; done # no half character
        s=$'\xe2\x80\xa6'$s
    fi
    if [[ $s == *[\"\\]* ]]; then
        s=${s//\\/\\\\}
        s=${s//\"/\\\"}
    fi
    if [[ $s == *[$'\x01'-$'\x1f']* ]]; then
        s=${s//$'\n'/\\n}
        s=${s//$'\t'/\\t}
        s=${s//$'\r'/\\r}
        if [[ $s == *[$'\x01'-$'\x1f']* ]]; then
            for ((i = 1; i < 32; i++)); do
                printf -v c '%02x' "$i"
                printf -v c '%b' "\\x$c"
                [[ $s == *"$c"* ]] && printf -v good '\\u%04x' "$i" && s=${s//"$c"/"$good"}
            done
        fi
    fi
    if [[ $s == *[$'\x80'-$'\xff']* ]]; then
        out=
        while [[ -n $s ]]; do
            [[ $s =~ $_BW_UTF8_RE ]]
            good=${BASH_REMATCH[0]}
            out+=$good
            s=${s:${#good}}
            [[ -n $s ]] || break
            # One U+FFFD for the longest start of a sequence that breaks off (as Python).
            good=${s:0:1}
            [[ $s =~ $_BW_UTF8_CUT_RE ]] && good=${BASH_REMATCH[0]}
            out+=$'\xef\xbf\xbd'
            s=${s:${#good}}
        done
        s=$out
    fi
    _BW_J=$s
}

# _bw_uint TEXT → _BW_J: a non-negative decimal integer, or empty when TEXT is not one.
_bw_uint() {
    _BW_J=
    local n=${1//[[:space:]]/}
    [[ -n $n && $n != *[!0-9]* && ${#n} -le 18 ]] && _BW_J=$((10#$n))
    return 0
}

# _bw_final_status TEXT → _BW_J: a seed 000 / free-form status → a final run status.
_bw_final_status() {
    local s=${1,,}
    s=${s//[[:space:]]/}
    case $s in
        success | succeeded | successful | ok | done | complete | completed | finished | 0) _BW_J=success ;;
        warning | warnings | warn | partial | partial_success | completed_with_warnings) _BW_J=warning ;;
        failed | fail | failure | error | errors | err | critical | aborted_with_error) _BW_J=failed ;;
        cancelled | canceled | aborted | interrupted | killed) _BW_J=cancelled ;;
        timeout | timed_out | timedout) _BW_J=timed_out ;;
        skipped | skip | unchanged | nothing_to_do) _BW_J=skipped ;;
        [1-9] | [1-9][0-9] | [12][0-9][0-9]) _BW_J=failed ;; # an exit code
        *)
            _BW_J=warning
            _bw_esc "$1" 64
            _bw_warn "unknown final status \"$_BW_J\" reported as warning (use success, warning or failed)"
            _BW_J=warning
            ;;
    esac
}

# ---------------------------------------------------------------------------------------
# The status file: one JSON object per service, one field per line, rewritten atomically.
# It also carries the counters between calls made in subshells (`find | while read …`).

_bw_metrics_dir() {
    local d=${METRICS_DIR-}
    if [[ -z $d ]]; then
        d=${XDG_STATE_HOME:-${HOME:-/tmp}/.local/state}/backwatch/status
    fi
    _BW_J=${d%/}
    [[ -n $_BW_J ]] || _BW_J=/
}

# _bw_status_file SERVICE → _BW_J: the path of its status file.
_bw_status_file() {
    local name=${1//\//_}
    name=${name:0:200}
    _bw_metrics_dir
    _BW_J="$_BW_J/${name}_status.json"
}

_bw_write_status() {
    local f=$_BW_SFILE end=null dur body dir tmp
    [[ -n $f ]] || return 1
    dir=${f%/*}
    if [[ $_BW_STATUS_J != running && -n ${1-} ]]; then
        _bw_iso "$_BW_NOW_S"
        end="\"$_BW_J\""
    fi
    dur=$((_BW_NOW_S - _BW_START_S))
    ((dur < 0)) && dur=0
    printf -v body '{\n  "service": "%s",\n  "description": "%s",\n  "backup_path": "%s",\n  "status": "%s",\n  "start_time": "%s",\n  "end_time": %s,\n  "duration_seconds": %s,\n  "files_processed": %s,\n  "total_size_bytes": %s,\n  "message": "%s",\n  "hostname": "%s",\n  "run_id": "%s"\n}\n' \
        "$_BW_SERVICE_J" "$_BW_DESC_J" "$_BW_PATH_J" "$_BW_STATUS_J" "$_BW_START_ISO" \
        "$end" "$dur" "$_BW_FILES" "$_BW_BYTES" "$_BW_MSG_J" "$_BW_HOST_J" "$_BW_RUN_ID"
    if [[ ! -d $dir ]] && ! command mkdir -p -- "$dir" 2>/dev/null; then
        _bw_warn_once "dir:$dir" "cannot create $dir; status file not written"
        _BW_TRACKED=0
        return 1
    fi
    tmp="$dir/.${f##*/}.$BASHPID.tmp"
    if { printf '%s' "$body" >"$tmp"; } 2>/dev/null && command mv -f -- "$tmp" "$f" 2>/dev/null; then
        return 0
    fi
    [[ -e $tmp ]] && command rm -f -- "$tmp" 2>/dev/null
    _bw_warn_once "write:$f" "cannot write $f (check METRICS_DIR); continuing without it"
    _BW_TRACKED=0
    return 1
}

# _bw_load: take status, message and counters from the status file when it belongs to the
# current run: a call made in a subshell updated the file, not this shell's variables.
_bw_load() {
    local -a l
    [[ -f $_BW_SFILE && -r $_BW_SFILE ]] || return 0
    mapfile -t -n 14 l <"$_BW_SFILE" 2>/dev/null
    # The layout is ours (one field per line; escaped JSON text holds no newline).
    [[ ${l[12]-} == '  "run_id": "'"$_BW_RUN_ID"'"' && ${l[4]-} == '  "status": "'* ]] || return 0
    local files=${l[8]#'  "files_processed": '} bytes=${l[9]#'  "total_size_bytes": '}
    files=${files%,} bytes=${bytes%,}
    [[ -n $files && -n $bytes && $files$bytes != *[!0-9]* ]] || return 0
    _BW_FILES=$files _BW_BYTES=$bytes
    _BW_STATUS_J=${l[4]#'  "status": "'} _BW_STATUS_J=${_BW_STATUS_J%'",'}
    _BW_MSG_J=${l[10]#'  "message": "'} _BW_MSG_J=${_BW_MSG_J%'",'}
    return 0
}

# ---------------------------------------------------------------------------------------
# The seed 000 functions

_bw_start() {
    local service=${1-} desc=${2-} path=${3-} ms job
    if [[ -z $service ]]; then
        _bw_warn "metrics_backup_start: give SERVICE DESCRIPTION PATH; nothing recorded"
        _BW_RUN_ID=
        return 0
    fi
    _bw_clock
    _BW_SERVICE=$service
    _bw_esc "$service" 200
    _BW_SERVICE_J=$_BW_J
    _bw_esc "$desc"
    _BW_DESC_J=$_BW_J
    _bw_esc "$path"
    _BW_PATH_J=$_BW_J
    _bw_esc "${HOSTNAME:-unknown}" 255
    _BW_HOST_J=$_BW_J
    # The job id: the service as a slug ([a-z0-9][a-z0-9._-]{0,63}).
    job=${service,,}
    job=${job//[^a-z0-9._-]/-}
    job=${job#"${job%%[a-z0-9]*}"}
    job=${job:0:64}
    [[ -n $job ]] || job=backup
    _BW_JOB=$job
    _bw_status_file "$service"
    _BW_SFILE=$_BW_J
    # A client-made run id (time-ordered like the server's) makes every replay idempotent.
    ms=$((_BW_NOW_S * 1000 + 10#${_BW_FRAC:0:3}))
    printf -v _BW_RUN_ID '%011x%08x%03x' "$ms" "${SRANDOM:-$((RANDOM << 15 | RANDOM))}" \
        "$(((RANDOM ^ BASHPID) & 0xfff))"
    _BW_START=$_BW_NOW _BW_START_S=$_BW_NOW_S
    _bw_iso "$_BW_NOW_S"
    _BW_START_ISO=$_BW_J
    _BW_STATUS_J=running _BW_MSG_J=$_BW_DESC_J _BW_FILES=0 _BW_BYTES=0 _BW_TRACKED=1
    _bw_write_status
    _bw_send POST /api/v1/runs/start \
        "{\"job\":\"$_BW_JOB\",\"id\":\"$_BW_RUN_ID\",\"host\":\"$_BW_HOST_J\",\"started_at\":$_BW_START,\"message\":\"$_BW_DESC_J\"}"
}

_bw_need_run() {
    [[ -n $_BW_RUN_ID ]] && return 0
    _bw_warn "$1: no backup in progress (call metrics_backup_start first); nothing recorded"
    return 1
}

_bw_update() {
    _bw_need_run metrics_update_status || return 0
    _bw_clock
    _bw_load
    _bw_esc "${1-}" 64
    [[ -n $_BW_J ]] && _BW_STATUS_J=$_BW_J
    _bw_esc "${2-}"
    _BW_MSG_J=$_BW_J
    _bw_write_status
    _bw_send POST "/api/v1/runs/$_BW_RUN_ID/status" "{\"message\":\"$_BW_MSG_J\"}"
}

_bw_file() {
    local name size state
    _bw_need_run metrics_file_backup_complete || return 0
    if [[ -z ${1-} ]]; then
        _bw_warn "metrics_file_backup_complete: give FILE SIZE STATUS; nothing recorded"
        return 0
    fi
    _bw_clock
    _bw_load
    _bw_esc "$1" "$_BW_NAME_MAX"
    name=$_BW_J
    _bw_uint "${2-}"
    size=$_BW_J
    if [[ -z $size ]]; then
        [[ -n ${2-} ]] && _bw_esc "$2" 64 && _bw_warn "metrics_file_backup_complete: size \"$_BW_J\" is not a number of bytes; counted as 0"
        size=0
    fi
    _bw_esc "${3:-success}" 64
    state=$_BW_J
    _BW_FILES=$((_BW_FILES + 1))
    _BW_BYTES=$((_BW_BYTES + size))
    _bw_write_status
    _bw_send POST "/api/v1/runs/$_BW_RUN_ID/files" \
        "{\"path\":\"$name\",\"size\":$size,\"status\":\"$state\"}"
}

_bw_complete() {
    local counts=
    _bw_need_run metrics_backup_complete || return 0
    _bw_clock
    _bw_load
    _bw_final_status "${1-}"
    _BW_STATUS_J=$_BW_J
    _bw_esc "${2-}"
    _BW_MSG_J=$_BW_J
    _bw_write_status final
    # The client's counters are authoritative when the status file carried them through
    # every call: they also repair a file event the server got twice (lost answer).
    ((_BW_TRACKED)) && counts=",\"files\":$_BW_FILES,\"size_bytes\":$_BW_BYTES"
    _bw_send POST "/api/v1/runs/$_BW_RUN_ID/finish" \
        "{\"status\":\"$_BW_STATUS_J\",\"finished_at\":$_BW_NOW,\"message\":\"$_BW_MSG_J\"$counts}" \
        final
    _BW_RUN_ID=
}

_bw_get_status() {
    local line f
    if [[ -z ${1-} ]]; then
        _bw_warn "metrics_get_status: give SERVICE"
        return 0
    fi
    _bw_status_file "$1"
    f=$_BW_J
    if [[ -f $f && -r $f ]]; then
        while IFS= read -r line || [[ -n $line ]]; do printf '%s\n' "$line"; done <"$f"
    else
        _bw_esc "$1" 200
        printf '{"service": "%s", "status": "unknown", "message": "no status file"}\n' "$_BW_J"
    fi
}

_bw_list() {
    local f name
    _bw_metrics_dir
    for f in "$_BW_J"/*_status.json; do
        name=${f##*/}
        printf '%s\n' "${name%_status.json}"
    done
}

# ---------------------------------------------------------------------------------------
# Reporting to the server, and the spool

_bw_spool_dir() {
    local d=${BACKWATCH_SPOOL_DIR-} home
    if [[ -z $d ]]; then
        home=~
        d=${XDG_CACHE_HOME:-${home:-/tmp}/.cache}/backwatch/spool
    fi
    _BW_J=${d%/}
}

# _bw_send METHOD PATH BODY [final]: deliver the spool first, then this request; spool it
# when the server cannot take it now. After a failed attempt, calls spool without trying
# the server for BACKWATCH_RETRY_SECONDS; "final" (the last call of a backup) always
# tries, and waits a little for another process's flush to finish.
_bw_send() {
    [[ -n ${BACKWATCH_URL-} ]] || return 0
    local spool wait=${4-} until=0 pending
    _bw_spool_dir
    spool=$_BW_J
    if ! type -P curl >/dev/null 2>&1; then
        _bw_warn_once curl "curl is not installed; reports are spooled in $spool (deliver them with: backwatch spool flush)"
        _bw_spool "$spool" "$1" "$2" "$3"
        return 0
    fi
    if [[ -z $wait && -f $spool/.retry_after ]]; then
        read -r until <"$spool/.retry_after" 2>/dev/null
        [[ $until =~ ^[0-9]+$ ]] || until=0
        if ((_BW_NOW_S < until)); then
            _bw_spool "$spool" "$1" "$2" "$3"
            return 0
        fi
    fi
    pending=("$spool"/*.json)
    _BW_REFUSED=
    if ((${#pending[@]})) && ! _bw_flush "$spool" "$wait"; then
        # a refused token is not an unreachable server: no report spooled behind it
        [[ -n $_BW_REFUSED ]] || _bw_spool "$spool" "$1" "$2" "$3"
        return 0
    fi
    _bw_http "$1" "$2" "$3"
    case $_BW_CODE in
        2?? | 409) ;;
        401 | 403) _bw_token_refused "$1 $2 was not delivered" ;;
        000* | 404x | 408 | 425 | 429 | 5??)
            _bw_unreachable "$spool"
            _bw_spool "$spool" "$1" "$2" "$3"
            ;;
        *) _bw_reject "$spool" "" "$1" "$2" "$3" ;;
    esac
    return 0
}

# _bw_http METHOD PATH BODY → _BW_CODE: "<http code>" or "000 <curl exit>".
_bw_http() {
    local url=${BACKWATCH_URL%/}$2 t=${BACKWATCH_TIMEOUT:-5} out
    [[ $t =~ ^[0-9]+(\.[0-9]+)?$ ]] || t=5
    local -a args=(-sS -w '\n%{http_code}' --connect-timeout "$t" --max-time "$t"
        -X "$1" -H 'Content-Type: application/json' -H 'Accept: application/json'
        --data-binary @-)
    local token=${BACKWATCH_TOKEN-}
    if [[ -z $token && -n ${BACKWATCH_TOKEN_FILE-} ]]; then
        { read -r token <"$BACKWATCH_TOKEN_FILE"; } 2>/dev/null ||
            [[ -n $token ]] || _bw_warn "cannot read BACKWATCH_TOKEN_FILE ($BACKWATCH_TOKEN_FILE)"
    fi
    # The token goes in through a file descriptor, never on the command line (ps).
    if [[ -n $token ]]; then
        out=$(command curl "${args[@]}" -H @/dev/fd/3 -- "$url" 2>/dev/null \
            3<<<"Authorization: Bearer $token" <<<"$3"; printf ' %s' "$?")
    else
        out=$(command curl "${args[@]}" -- "$url" 2>/dev/null <<<"$3"; printf ' %s' "$?")
    fi
    _BW_ANSWER=${out%$'\n'*}
    _BW_CODE=${out##*$'\n'}
    _BW_CODE=${_BW_CODE%% *}
    [[ $_BW_CODE == 000 || -z $_BW_CODE ]] && _BW_CODE="000 ${out##* }"
    # A 404 that is not backwatch's "no such run" means BACKWATCH_URL is not the server's
    # base URL: keep the report for when it is fixed.
    if [[ $_BW_CODE == 404 && ($out != *'"code":"not_found"'* || $out == *'no such URL'*) ]]; then
        _BW_CODE=404x
    fi
    return 0
}

# _bw_shown_url → _BW_J: BACKWATCH_URL as messages show it, a password in it masked.
_bw_shown_url() {
    local re='^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)[^@]*@(.*)$'
    _BW_J=$BACKWATCH_URL
    [[ $_BW_J =~ $re ]] && _BW_J="${BASH_REMATCH[1]}***@${BASH_REMATCH[2]}"
    return 0
}

# _bw_token_refused WHAT: the server answered 401/403. The user's to fix, so a warning
# every time, and nothing spooled as if the server were down.
_bw_token_refused() {
    _bw_warn "the server refused the token (HTTP $_BW_CODE; check BACKWATCH_TOKEN: it needs the ingest scope); $1"
    return 0
}

_bw_unreachable() {
    local pause=${BACKWATCH_RETRY_SECONDS:-30} why
    [[ $pause =~ ^[0-9]+$ ]] || pause=30
    case $_BW_CODE in
        "000 7") why="connection refused" ;;
        "000 6") why="host not found" ;;
        "000 28") why="timed out" ;;
        000*) why="curl exit ${_BW_CODE#000 }" ;;
        404x) why="HTTP 404: is BACKWATCH_URL the server's base URL?" ;;
        *) why="HTTP $_BW_CODE" ;;
    esac
    _bw_shown_url
    _bw_warn_once unreachable "cannot reach $_BW_J ($why); reports are spooled in $1 and sent later"
    { [[ -d $1 ]] || command mkdir -m 700 -p -- "$1"; } 2>/dev/null
    { printf '%s\n' "$((_BW_NOW_S + pause))" >"$1/.retry_after"; } 2>/dev/null
    return 0
}

# _bw_spool DIR METHOD PATH BODY: one entry, named so that name order is write order,
# written atomically (temp file + mv) in the format of backwatch/spool.py.
_bw_spool() {
    local dir=$1 ns name tmp
    case ${BACKWATCH_SPOOL-1} in
        0 | no | false)
            _bw_warn "not delivered and not spooled (BACKWATCH_SPOOL=${BACKWATCH_SPOOL}): $2 $3"
            return 0
            ;;
    esac
    if [[ ! -d $dir ]] && ! command mkdir -m 700 -p -- "$dir" 2>/dev/null; then
        _bw_warn "cannot create the spool $dir; report lost"
        return 0
    fi
    ns=$((10#$_BW_NOW_S$_BW_FRAC * 1000))
    ((ns <= _BW_LAST_NS)) && ns=$((_BW_LAST_NS + 1)) # the clock stepped back
    _BW_LAST_NS=$ns
    printf -v name '%019d-%s-%04x%04x.json' "$ns" "$BASHPID" "$RANDOM" "$RANDOM"
    tmp="$dir/.$name.tmp"
    if { printf '{"method": "%s", "path": "%s", "body": %s}' "$2" "$3" "$4" >"$tmp"; } 2>/dev/null &&
        command mv -f -- "$tmp" "$dir/$name" 2>/dev/null; then
        return 0
    fi
    [[ -e $tmp ]] && command rm -f -- "$tmp" 2>/dev/null
    _bw_warn "cannot write to the spool $dir; report lost"
    return 0
}

# _bw_reject DIR ENTRY METHOD PATH BODY: the server refused the request as invalid. Keep
# it in DIR/rejected with the reason, for a human; never retry it.
_bw_reject() {
    local dir=$1/rejected name
    local why=${_BW_ANSWER:0:300}
    why=${why//[$'\n\r']/ }
    _bw_warn "the server refused $3 $4 (HTTP $_BW_CODE: $why); kept in $dir"
    { [[ -d $dir ]] || command mkdir -m 700 -p -- "$dir"; } 2>/dev/null || return 0
    if [[ -n $2 ]]; then
        name=${2##*/}
        command mv -f -- "$2" "$dir/$name" 2>/dev/null
    else
        printf -v name '%019d-%s-%04x.json' "$((10#$_BW_NOW_S$_BW_FRAC * 1000))" "$BASHPID" "$RANDOM"
        { printf '{"method": "%s", "path": "%s", "body": %s}' "$3" "$4" "$5" >"$dir/$name"; } 2>/dev/null
    fi
    _bw_shown_url
    { printf 'HTTP %s from %s: %s\n' "$_BW_CODE" "$_BW_J" "$why" >"$dir/$name.reason"; } 2>/dev/null
    return 0
}

# _bw_lock DIR: the spool's flush lock (shared with `backwatch spool flush`): created with
# O_EXCL (noclobber); a lock whose process is gone or older than 10 minutes is broken.
_bw_lock() {
    local -
    set -C
    local lock=$1/.flush.lock pid='' since=0
    { printf '%s %s\n' "$BASHPID" "$_BW_NOW_S" >"$lock"; } 2>/dev/null && return 0
    read -r pid since <"$lock" 2>/dev/null
    [[ $since =~ ^[0-9]+$ ]] || since=0
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && ((_BW_NOW_S - since < 600)); then
        return 1
    fi
    command rm -f -- "$lock" 2>/dev/null
    { printf '%s %s\n' "$BASHPID" "$_BW_NOW_S" >"$lock"; } 2>/dev/null
}

# _bw_flush DIR [final]: deliver spooled entries in name order; 0 when none is left.
_bw_flush() {
    local dir=$1 entry content tries=0 re method path
    re='^\{"method": "([A-Z]+)", "path": "([^"\\]*)", "body": (.*)\}[[:space:]]*$'
    until _bw_lock "$dir"; do
        [[ ${2-} == final ]] && ((tries++ < 40)) || return 1
        command sleep 0.05 2>/dev/null || return 1
        _bw_clock
    done
    for entry in "$dir"/*.json; do
        [[ -f $entry ]] || continue
        content=
        IFS= read -r -d '' content <"$entry"
        if [[ ! $content =~ $re ]]; then
            _bw_warn_once "format:$entry" "cannot read spool entry $entry; deliver it with: backwatch spool flush"
            command rm -f -- "$dir/.flush.lock" 2>/dev/null
            return 1
        fi
        method=${BASH_REMATCH[1]} path=${BASH_REMATCH[2]}
        _bw_http "$method" "$path" "${BASH_REMATCH[3]}"
        case $_BW_CODE in
            2?? | 409) command rm -f -- "$entry" 2>/dev/null ;;
            401 | 403) # the entries are fine, the token is not: they wait for a good one
                _BW_REFUSED=1
                _bw_token_refused "spooled reports wait in $dir"
                command rm -f -- "$dir/.flush.lock" 2>/dev/null
                return 1
                ;;
            000* | 404x | 408 | 425 | 429 | 5??)
                _bw_unreachable "$dir"
                command rm -f -- "$dir/.flush.lock" 2>/dev/null
                return 1
                ;;
            *) _bw_reject "$dir" "$entry" "$method" "$path" ;;
        esac
    done
    command rm -f -- "$dir/.flush.lock" 2>/dev/null
    return 0
}

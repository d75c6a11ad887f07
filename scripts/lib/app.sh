# shellcheck shell=bash
#
# The project's own service processes (command-api, query-api, projector): where the binaries
# are, how one is started, when it is ready, how they are stopped. Shared by scripts/run and
# scripts/lib/system.sh. Source scripts/lib/services.sh first.
#
#   app_random_hex BYTES               prints BYTES random bytes as hex (tokens, ids)
#   app_bin_dir PROFILE                prints the folder of the debug or release binaries
#   app_connect_addr ADDR              prints the host:port a client uses for listen address ADDR
#   app_start NAME BIN_DIR LOG [VAR=VALUE...]
#                                      starts BIN_DIR/NAME in the background, its output appended
#                                      to LOG, with the VAR=VALUE settings; sets APP_PID. Call it
#                                      in the shell that will wait for the process, not in $(...)
#   app_wait_ready NAME URL PID LOG TIMEOUT
#                                      waits until URL answers 200; if the process exits or
#                                      TIMEOUT seconds pass, prints why with the end of LOG and
#                                      returns 1
#   app_report_exit NAME PID LOG [STATUS]
#                                      prints that NAME exited, with its status and the end of LOG
#   app_stop TIMEOUT NAME=PID...       SIGTERM to each, up to TIMEOUT seconds to finish, then
#                                      SIGKILL; returns when all are gone
#   app_ensure_query_login DATABASE_URL
#                                      makes the login cqrs_query_login (a member of
#                                      cqrs_query_reader, which the migrations make) and sets
#                                      APP_QUERY_DATABASE_URL to DATABASE_URL as that login; on
#                                      failure prints why and returns 1

app_random_hex() {
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

app_bin_dir() {
    local target=${CARGO_TARGET_DIR:-target}
    # A relative CARGO_TARGET_DIR is relative to where cargo runs: the repository root here.
    [[ $target == /* ]] || target="$SERVICES_REPO_ROOT/$target"
    echo "$target/$1"
}

# A wildcard listen address is reached over loopback.
app_connect_addr() {
    local addr=$1 host port
    host=${addr%:*}
    port=${addr##*:}
    case $host in
        0.0.0.0 | "") host=127.0.0.1 ;;
        "[::]") host="[::1]" ;;
    esac
    echo "$host:$port"
}

# The tokens and the query-api's login are unset unless given: a service gets only what it needs
# (COMMAND_API_TOKEN for command-api alone, OPERATOR_TOKEN for the projector alone).
app_start() {
    local name=$1 bin_dir=$2 log=$3
    shift 3
    env -u COMMAND_API_TOKEN -u QUERY_DATABASE_URL -u OPERATOR_TOKEN "$@" "$bin_dir/$name" </dev/null >>"$log" 2>&1 &
    # shellcheck disable=SC2034 # read by the caller
    APP_PID=$!
}

app_report_exit() {
    local name=$1 pid=$2 log=$3 status=${4:-}
    if [[ -z $status ]]; then
        status=0
        wait "$pid" 2>/dev/null || status=$?
    fi
    printf 'error: %s exited (status %s). Last lines of %s:\n' "$name" "$status" "$log" >&2
    tail -n 20 "$log" | sed 's/^/    /' >&2
}

app_wait_ready() {
    local name=$1 url=$2 pid=$3 log=$4 timeout=$5 code deadline
    deadline=$((SECONDS + timeout))
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        [[ $code == 200 ]] && return 0
        if ! services_pid_alive "$pid"; then
            app_report_exit "$name" "$pid" "$log"
            return 1
        fi
        if (( SECONDS >= deadline )); then
            printf 'error: %s did not answer 200 on %s within %ss (last answer: %s). Last lines of %s:\n' \
                "$name" "$url" "$timeout" "$code" "$log" >&2
            tail -n 20 "$log" | sed 's/^/    /' >&2
            return 1
        fi
        sleep 0.25
    done
}

app_stop() {
    local timeout=$1 pair name pid deadline
    shift
    for pair in "$@"; do
        pid=${pair#*=}
        if services_pid_alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    deadline=$((SECONDS + timeout))
    for pair in "$@"; do
        name=${pair%%=*}
        pid=${pair#*=}
        while services_pid_alive "$pid" && (( SECONDS < deadline )); do sleep 0.1; done
        if services_pid_alive "$pid"; then
            echo "$name did not stop within $timeout s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while services_pid_alive "$pid"; do sleep 0.05; done
        fi
        wait "$pid" 2>/dev/null || true
    done
}

# The query-api logs in as a role that is only a member of cqrs_query_reader: its sessions can
# read the read models and nothing else, even if one dropped the role it sets. Roles belong to the
# whole server, so every database of it shares this one login.
app_ensure_query_login() {
    local database_url=$1
    if ! psql "$database_url" -X -q -v ON_ERROR_STOP=1 </dev/null >/dev/null -c "
        DO \$\$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cqrs_query_login') THEN
                CREATE ROLE cqrs_query_login LOGIN IN ROLE cqrs_query_reader;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END \$\$"; then
        printf 'error: cannot create the query-api login role cqrs_query_login on %s\n' "$database_url" >&2
        return 1
    fi
    # shellcheck disable=SC2034 # read by the caller
    APP_QUERY_DATABASE_URL="postgres://cqrs_query_login@${database_url#*@}"
}

# shellcheck shell=bash
#
# The whole system, started in isolation for one script-level test suite (generated clients,
# schemathesis, a browser test, a soak test, a benchmark): its own database, Redis key prefix,
# ports and token, so any number of suites and scripts/run can run on one machine at once.
# Source this file (it sources services.sh and app.sh), then:
#
#   system_start [--release] [--saga-mode M] [--no-build] [--nats] [--private-postgres]
#                [--pg-setting NAME=VALUE]...
#       Makes PostgreSQL and Redis answer (ensure_services), builds the binaries (`cargo build
#       --bins`, quietly; --release for release ones; --no-build to use what is there, in
#       $CARGO_TARGET_DIR or target/); with --private-postgres starts a PostgreSQL cluster of the
#       system's own on a free port (pg_cluster_start; for a measurement that other work on the
#       shared server must not disturb: its sessions, or a long transaction elsewhere holding
#       back the projector's safe horizon; system_stop deletes it; --pg-setting gives it a
#       server setting, e.g. shared_preload_libraries=pg_stat_statements), creates the database
#       cqrs_it_<id>, picks three free ports,
#       a Redis key prefix cqrs_it_<id>: and a token, starts command-api (which applies the
#       migrations), makes the query-api's login cqrs_query_login, starts projector and
#       query-api, and waits until each answers /readyz. Registers system_stop on EXIT (chained
#       before any EXIT trap already set; an EXIT trap set afterwards must call system_stop).
#       --nats: also makes NATS with JetStream answer (ensure_nats), turns the projector's relay on
#       with a stream CQRS_IT_<ID> and subject prefix cqrs_it_<id> of the system's own, and starts
#       the notifications service (its schema in the system's database) on a fourth port.
#       Without it the relay stays off, whatever NATS_URL the environment holds.
#       Exports:
#         SYSTEM_COMMAND_URL SYSTEM_QUERY_URL SYSTEM_PROJECTOR_URL   http://127.0.0.1:<port>
#         SYSTEM_TOKEN                the command-api's bearer token
#         SYSTEM_OPERATOR_TOKEN       the projector's operator token (POST /dead-letters/retry)
#         SYSTEM_DATABASE_URL         the database, as the owner (postgres)
#         SYSTEM_QUERY_DATABASE_URL   the database, as the query-api's login
#         SYSTEM_REDIS_URL SYSTEM_REDIS_PREFIX
#         SYSTEM_LOG_DIR              <service>.log of each service (restarts append)
#         SYSTEM_BIN_DIR SYSTEM_SAGA_MODE SYSTEM_ID
#         SYSTEM_COMMAND_PID SYSTEM_QUERY_PID SYSTEM_PROJECTOR_PID
#       and with --nats:
#         SYSTEM_NATS_URL SYSTEM_NATS_STREAM SYSTEM_NATS_PREFIX
#         SYSTEM_NOTIFICATIONS_URL SYSTEM_NOTIFICATIONS_PID
#       Any other setting of the services (SNAPSHOT_EVERY, RUST_LOG, ...) passes through from the
#       environment. Exits (via EXIT, cleaning up) if the system cannot be started. Call it in the
#       script's own shell, not in $(...) or a pipeline: the services are that shell's children.
#   system_stop
#       Stops the services (SIGTERM, then SIGKILL after 10 s), drops the database (ending its
#       sessions first), deletes the Redis keys of the prefix (SCAN + UNLINK, never FLUSH*), the
#       NATS stream (with --nats) and the log folder; the log folder is kept, and its path printed, when the script is exiting
#       with a failure or SYSTEM_KEEP_LOGS=1. Idempotent. Returns 1 if something was left behind.
#   system_kill SERVICE       SIGKILL one service (command-api, query-api, projector, or with
#                             --nats notifications); returns once it is gone
#   system_restart SERVICE    stops it if it runs (SIGTERM, then SIGKILL after 10 s), starts it
#                             again on the same port and settings, waits for /readyz; exports its
#                             new pid
#
# Settings: SYSTEM_READY_TIMEOUT (60) seconds for each /readyz; PGHOST/PGPORT/REDIS_HOST/
# REDIS_PORT as in services.sh. The login role cqrs_query_login belongs to the whole server and
# is shared with other systems on it, so system_stop leaves it.

# shellcheck source=SCRIPTDIR/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
# shellcheck source=SCRIPTDIR/app.sh
source "$(dirname "${BASH_SOURCE[0]}")/app.sh"

_system_started=""
_system_nats=""
declare -A _system_pid=() _system_port=()

system__die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# The exported name of SERVICE's pid.
system__pid_var() {
    case $1 in
        command-api) echo SYSTEM_COMMAND_PID ;;
        query-api) echo SYSTEM_QUERY_PID ;;
        projector) echo SYSTEM_PROJECTOR_PID ;;
        notifications) echo SYSTEM_NOTIFICATIONS_PID ;;
    esac
}

system__check_service() {
    [[ ${_system_pid[$1]+set} ]] ||
        system__die "unknown service '$1' (or the system is not started): use command-api, query-api, projector (or notifications, started with --nats)"
}

# Starts SERVICE in the background with the system's settings.
system__launch() {
    local name=$1 var
    local common=(DATABASE_URL="$SYSTEM_DATABASE_URL" REDIS_URL="$SYSTEM_REDIS_URL"
        REDIS_KEY_PREFIX="$SYSTEM_REDIS_PREFIX" SAGA_MODE="$SYSTEM_SAGA_MODE"
        COMMAND_API_ADDR="127.0.0.1:${_system_port[command-api]}"
        QUERY_API_ADDR="127.0.0.1:${_system_port[query-api]}"
        PROJECTOR_ADDR="127.0.0.1:${_system_port[projector]}"
        LOG_FORMAT="${LOG_FORMAT:-json}" COMMAND_API_INSECURE=)
    # The relay is on with --nats only; an empty NATS_URL keeps it off.
    local nats_env=(NATS_URL=)
    if [[ -n $_system_nats ]]; then
        nats_env=(NATS_URL="$SYSTEM_NATS_URL" NATS_STREAM="$SYSTEM_NATS_STREAM" NATS_SUBJECT_PREFIX="$SYSTEM_NATS_PREFIX")
    fi
    case $name in
        command-api) app_start "$name" "$SYSTEM_BIN_DIR" "$SYSTEM_LOG_DIR/$name.log" "${common[@]}" COMMAND_API_TOKEN="$SYSTEM_TOKEN" ;;
        query-api) app_start "$name" "$SYSTEM_BIN_DIR" "$SYSTEM_LOG_DIR/$name.log" "${common[@]}" QUERY_DATABASE_URL="$SYSTEM_QUERY_DATABASE_URL" ;;
        projector) app_start "$name" "$SYSTEM_BIN_DIR" "$SYSTEM_LOG_DIR/$name.log" "${common[@]}" "${nats_env[@]}" OPERATOR_TOKEN="$SYSTEM_OPERATOR_TOKEN" ;;
        notifications)
            app_start "$name" "$SYSTEM_BIN_DIR" "$SYSTEM_LOG_DIR/$name.log" "${nats_env[@]}" \
                NOTIFICATIONS_DATABASE_URL="$SYSTEM_DATABASE_URL" \
                NOTIFICATIONS_ADDR="127.0.0.1:${_system_port[notifications]}" LOG_FORMAT="${LOG_FORMAT:-json}" ;;
        *) app_start "$name" "$SYSTEM_BIN_DIR" "$SYSTEM_LOG_DIR/$name.log" "${common[@]}" OPERATOR_TOKEN="$SYSTEM_OPERATOR_TOKEN" ;;
    esac
    _system_pid[$name]=$APP_PID
    var=$(system__pid_var "$name")
    printf -v "$var" '%s' "$APP_PID"
    export "${var?}"
}

system__wait_ready() {
    app_wait_ready "$1" "http://127.0.0.1:${_system_port[$1]}/readyz" "${_system_pid[$1]}" \
        "$SYSTEM_LOG_DIR/$1.log" "${SYSTEM_READY_TIMEOUT:-60}"
}

# The EXIT trap: stop the system, then run the EXIT trap that was there before system_start.
system__on_exit() {
    local status=$?
    trap '' INT TERM   # the stop is bounded; a second Ctrl-C must not leave things behind
    _SYSTEM_EXIT_STATUS=$status system_stop || true
    if [[ -n ${_system_prev_exit_trap:-} ]]; then
        (exit "$status")
        eval "$_system_prev_exit_trap"
    fi
    exit "$status"
}

system_start() {
    local profile=debug build=1 saga_mode=${SAGA_MODE:-orchestration} nats="" private_postgres=0 name out prev
    local pg_settings=()
    local services=(command-api query-api projector)
    while (( $# )); do
        case $1 in
            --release) profile=release; shift ;;
            --no-build) build=0; shift ;;
            --private-postgres) private_postgres=1; shift ;;
            --pg-setting) pg_settings+=("${2:?--pg-setting needs NAME=VALUE}"); shift 2 ;;
            --saga-mode) saga_mode=${2:?--saga-mode needs orchestration or choreography}; shift 2 ;;
            --nats) nats=1; services+=(notifications); shift ;;
            *) system__die "system_start: unknown argument $1 (use --release, --saga-mode M, --no-build, --nats, --private-postgres, --pg-setting NAME=VALUE)" ;;
        esac
    done
    [[ -z $_system_started ]] || system__die "system_start: the system is already started; call system_stop first"
    command -v curl >/dev/null 2>&1 || system__die "curl is needed to check the services; install it (apt-get install -y curl)"

    # Clean up on any exit from here on, whatever fails half-way.
    if [[ -z ${_system_trap_set:-} ]]; then
        prev=$(trap -p EXIT)
        if [[ -n $prev ]]; then
            eval "set -- $prev"   # trap -- 'COMMAND' EXIT
            _system_prev_exit_trap=$3
        fi
        trap system__on_exit EXIT
        if [[ -z $(trap -p INT) ]]; then trap 'exit 130' INT; fi
        if [[ -z $(trap -p TERM) ]]; then trap 'exit 143' TERM; fi
        _system_trap_set=1
    fi

    SYSTEM_ID=$(app_random_hex 6)
    _system_started=1
    SYSTEM_LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cqrs-system-$SYSTEM_ID.XXXXXX")
    export SYSTEM_ID SYSTEM_LOG_DIR

    if [[ -n $nats ]]; then ensure_services --nats; else ensure_services; fi
    SYSTEM_BIN_DIR=$(app_bin_dir "$profile")
    if (( build )); then
        local cargo_args=(build --bins --quiet)
        if [[ $profile == release ]]; then cargo_args+=(--release); fi
        services_log "system: cargo ${cargo_args[*]} ..."
        if ! out=$(cd "$SERVICES_REPO_ROOT" && cargo "${cargo_args[@]}" 2>&1 </dev/null); then
            printf '%s\n' "$out" >&2
            system__die "the build failed (output above)"
        fi
    fi
    for name in "${services[@]}"; do
        [[ -x $SYSTEM_BIN_DIR/$name ]] ||
            system__die "$SYSTEM_BIN_DIR/$name not found; build it (cargo build --bins, with --release for release) or drop --no-build"
    done

    if (( private_postgres )); then
        local pg_port
        _system_pg_folder=$(mktemp -d "${TMPDIR:-/tmp}/cqrs-system-pg-$SYSTEM_ID.XXXXXX")
        chmod 755 "$_system_pg_folder"   # the postgres user (root runs the server as it) passes through
        services_free_port pg_port
        pg_cluster_start "$_system_pg_folder/data" "$pg_port" "${pg_settings[@]}"
        DATABASE_SERVER_URL="postgres://postgres@127.0.0.1:$pg_port"
    elif (( ${#pg_settings[@]} )); then
        system__die "--pg-setting needs --private-postgres: the shared server's settings are not ours to change"
    fi

    SYSTEM_SAGA_MODE=$saga_mode
    SYSTEM_TOKEN=$(app_random_hex 16)
    SYSTEM_OPERATOR_TOKEN=$(app_random_hex 16)
    SYSTEM_REDIS_URL=$REDIS_URL
    SYSTEM_REDIS_PREFIX="cqrs_it_$SYSTEM_ID:"
    _system_database="cqrs_it_$SYSTEM_ID"
    ensure_database "$_system_database"
    SYSTEM_DATABASE_URL="$DATABASE_SERVER_URL/$_system_database"
    export SYSTEM_BIN_DIR SYSTEM_SAGA_MODE SYSTEM_TOKEN SYSTEM_OPERATOR_TOKEN SYSTEM_REDIS_URL SYSTEM_REDIS_PREFIX SYSTEM_DATABASE_URL

    for name in "${services[@]}"; do
        services_free_port "_system_port[$name]"
    done
    SYSTEM_COMMAND_URL="http://127.0.0.1:${_system_port[command-api]}"
    SYSTEM_QUERY_URL="http://127.0.0.1:${_system_port[query-api]}"
    SYSTEM_PROJECTOR_URL="http://127.0.0.1:${_system_port[projector]}"
    export SYSTEM_COMMAND_URL SYSTEM_QUERY_URL SYSTEM_PROJECTOR_URL
    if [[ -n $nats ]]; then
        _system_nats=1
        SYSTEM_NATS_URL=$NATS_URL
        SYSTEM_NATS_STREAM="CQRS_IT_${SYSTEM_ID^^}"
        SYSTEM_NATS_PREFIX="cqrs_it_$SYSTEM_ID"
        SYSTEM_NOTIFICATIONS_URL="http://127.0.0.1:${_system_port[notifications]}"
        export SYSTEM_NATS_URL SYSTEM_NATS_STREAM SYSTEM_NATS_PREFIX SYSTEM_NOTIFICATIONS_URL
    fi

    # command-api first: it applies the migrations, which make the role the query login joins.
    system__launch command-api
    system__wait_ready command-api || exit 1
    app_ensure_query_login "$SYSTEM_DATABASE_URL" || exit 1
    SYSTEM_QUERY_DATABASE_URL=$APP_QUERY_DATABASE_URL
    export SYSTEM_QUERY_DATABASE_URL
    system__launch projector
    system__launch query-api
    if [[ -n $nats ]]; then system__launch notifications; fi
    system__wait_ready projector || exit 1
    system__wait_ready query-api || exit 1
    if [[ -n $nats ]]; then system__wait_ready notifications || exit 1; fi
    services_log "system: $SYSTEM_ID ready ($profile, $SYSTEM_SAGA_MODE): command-api $SYSTEM_COMMAND_URL, query-api $SYSTEM_QUERY_URL, projector $SYSTEM_PROJECTOR_URL${nats:+, notifications $SYSTEM_NOTIFICATIONS_URL (NATS stream $SYSTEM_NATS_STREAM)}; logs in $SYSTEM_LOG_DIR"
}

system_kill() {
    local name=${1:?system_kill needs a service name} pid
    system__check_service "$name"
    pid=${_system_pid[$name]}
    # wait reaps it at once, with bash's "Killed" notice sent where nobody needs to read it.
    {
        if services_pid_alive "$pid"; then kill -KILL "$pid" || true; fi
        wait "$pid" || true
    } 2>/dev/null
}

system_restart() {
    local name=${1:?system_restart needs a service name}
    system__check_service "$name"
    app_stop 10 "$name=${_system_pid[$name]}"
    printf '\n--- system_restart %s at %s ---\n' "$name" "$(date -u +%FT%TZ)" >>"$SYSTEM_LOG_DIR/$name.log"
    system__launch "$name"
    system__wait_ready "$name" || exit 1
}

system_stop() {
    local status=${_SYSTEM_EXIT_STATUS:-0} name pairs=() left=0 keys out
    [[ -n $_system_started ]] || return 0
    _system_started=""

    for name in command-api projector query-api notifications; do
        if [[ -n ${_system_pid[$name]:-} ]]; then pairs+=("$name=${_system_pid[$name]}"); fi
    done
    if (( ${#pairs[@]} )); then app_stop 10 "${pairs[@]}"; fi

    if [[ -n $_system_nats ]]; then
        nats_delete_stream "$SYSTEM_NATS_URL" "$SYSTEM_NATS_STREAM" || left=1
        _system_nats=""
    fi

    if [[ -n ${_system_pg_folder:-} ]]; then
        # The system's own cluster: nothing of it is kept.
        if ! (pg_cluster_stop "$_system_pg_folder/data" immediate); then
            printf 'warning: could not stop the PostgreSQL cluster in %s\n' "$_system_pg_folder/data" >&2
            left=1
        fi
        rm -rf "$_system_pg_folder"
        _system_pg_folder=""
    elif [[ -n ${_system_database:-} && -n ${DATABASE_SERVER_URL:-} ]]; then
        if ! out=$(psql "$DATABASE_SERVER_URL/postgres" -X -q -v ON_ERROR_STOP=1 </dev/null 2>&1 \
            -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$_system_database' AND pid <> pg_backend_pid()" \
            -c "DROP DATABASE IF EXISTS \"$_system_database\""); then
            printf 'warning: could not drop the database %s: %s\n' "$_system_database" "$out" >&2
            left=1
        fi
    fi

    if [[ -n ${SYSTEM_REDIS_PREFIX:-} && -n ${SYSTEM_REDIS_URL:-} ]]; then
        # The prefix is cqrs_it_<hex>: : no glob characters, so the pattern matches it literally.
        redis-cli -u "$SYSTEM_REDIS_URL" --scan --pattern "$SYSTEM_REDIS_PREFIX*" </dev/null |
            xargs -r -d '\n' -n 500 redis-cli -u "$SYSTEM_REDIS_URL" UNLINK >/dev/null || true
        keys=$(redis-cli -u "$SYSTEM_REDIS_URL" --scan --pattern "$SYSTEM_REDIS_PREFIX*" </dev/null | wc -l)
        if (( keys > 0 )); then
            printf 'warning: %s Redis keys with the prefix %s are left\n' "$keys" "$SYSTEM_REDIS_PREFIX" >&2
            left=1
        fi
    fi

    if [[ -n ${SYSTEM_LOG_DIR:-} && -d $SYSTEM_LOG_DIR ]]; then
        if (( status != 0 )) || [[ ${SYSTEM_KEEP_LOGS:-} == 1 ]]; then
            services_log "system: the services' logs are kept in $SYSTEM_LOG_DIR"
        else
            rm -rf "$SYSTEM_LOG_DIR"
        fi
    fi
    _system_pid=()
    return "$left"
}

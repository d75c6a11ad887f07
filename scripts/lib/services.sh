# shellcheck shell=bash
#
# Makes PostgreSQL, Redis (and NATS) available to the project. Sourced by scripts/test, scripts/run
# and scripts/lib/system.sh.
#
#   ensure_services [--nats]  PostgreSQL and Redis answer; exports DATABASE_SERVER_URL and REDIS_URL
#                             (--nats: also ensure_nats)
#   ensure_database NAME      creates database NAME on that server if it does not exist
#   ensure_nats               a NATS server with JetStream answers; exports NATS_URL
#   nats_delete_stream URL NAME  deletes JetStream stream NAME (and its consumers) on the NATS at
#                             URL (nats://host:port); returns 1 with a message if it cannot
#   ensure_chromium           Chromium renders headless; exports CHROMIUM (returns 1, never exits)
#   ensure_node_package_dir D npm ci / npm install in folder D (returns 1, never exits)
#   pg_cluster_start DATA PORT [NAME=VALUE...]
#                             a throwaway PostgreSQL cluster for a test that stops or crashes
#                             it: created in DATA unless it holds one, started on 127.0.0.1:PORT
#                             with the server settings given (`-c NAME=VALUE`)
#   pg_cluster_stop DATA [MODE]
#                             stops it (pg_ctl -m MODE: fast, or immediate for a crash)
#
# Settings (environment):
#   PGHOST (127.0.0.1), PGPORT (5432)            where PostgreSQL is expected
#   REDIS_HOST (127.0.0.1), REDIS_PORT (6379)    where Redis is expected
#   NATS_HOST (127.0.0.1), NATS_PORT (4222)      where NATS is expected (ensure_nats)
#   SERVICES_START_TIMEOUT (60)                  seconds to wait for a server we start
#   SERVICES_STATE_DIR (/var/lib/cqrs-shop)      where root keeps project-local PostgreSQL clusters
#
# A server that already answers is used as it is. Otherwise a project-local one is started from
# .run/ (git-ignored): PostgreSQL from .run/postgres (trust auth, 127.0.0.1 only), Redis from
# .run/redis (no persistence), NATS from .run/nats (JetStream, 127.0.0.1 only). As root,
# PostgreSQL runs as the `postgres` user, which may not be allowed into the checkout (a clone in
# /root), so .run/postgres is then a symlink to $SERVICES_STATE_DIR/<hash of the checkout's
# path>/postgres. Missing server packages are installed from Debian when running as root. These
# functions never stop, wipe or reconfigure a server they did not start; the servers they do
# start keep running after the calling script ends, so later runs start instantly.

SERVICES_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_RUN_DIR="$SERVICES_REPO_ROOT/.run"
SERVICES_STATE_DIR=${SERVICES_STATE_DIR:-/var/lib/cqrs-shop}

services_log() { printf '%s\n' "$*" >&2; }
services_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- packages ----------------------------------------------------------------------------------

_services_apt_updated=""

# services_apt_try_install WHAT PACKAGE...: installs Debian packages; on failure sets
# SERVICES_APT_ERROR to a line saying why and what to do, and returns 1.
services_apt_try_install() {
    local what=$1
    shift
    SERVICES_APT_ERROR=""
    if [[ $(id -u) -ne 0 ]]; then
        SERVICES_APT_ERROR="$what is not installed; install it with: sudo apt-get install -y $*"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        SERVICES_APT_ERROR="$what is not installed and this is not a Debian-like system; install $* yourself"
        return 1
    fi
    services_log "Installing $* (apt-get) ..."
    if [[ -z $_services_apt_updated ]]; then
        if ! DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2; then
            SERVICES_APT_ERROR="apt-get update failed (output above)"
            return 1
        fi
        _services_apt_updated=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" </dev/null >&2; then
        SERVICES_APT_ERROR="apt-get install $* failed (output above)"
        return 1
    fi
}

# services_apt_install WHAT PACKAGE...: installs Debian packages, or exits saying what to install.
services_apt_install() {
    services_apt_try_install "$@" || services_die "$SERVICES_APT_ERROR"
}

# --- small helpers -----------------------------------------------------------------------------

# True if a TCP connection to HOST PORT succeeds, whatever answers there.
services_port_open() {
    # shellcheck disable=SC2016 # expanded by the inner bash, which gets host and port as $1 $2
    timeout 2 bash -c ': <"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# services_free_port VAR: sets VAR to a TCP port on which nothing answers on 127.0.0.1. Ports come
# from 20000-32767, below Linux's ephemeral range (32768-60999), so no outgoing connection holds
# one; a port handed out once is not handed out again by this shell, even before it is bound.
_services_ports_given=" "
services_free_port() {
    local -n _services_port_var=$1
    local port tries
    for ((tries = 0; tries < 500; tries++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        [[ $_services_ports_given == *" $port "* ]] && continue
        services_port_open 127.0.0.1 "$port" && continue
        _services_ports_given+="$port "
        _services_port_var=$port
        return 0
    done
    services_die "found no free TCP port in 20000-32767 on 127.0.0.1"
}

# True if HOST names this machine's loopback, where we are able to start a server.
services_is_loopback() {
    [[ $1 == 127.0.0.1 || $1 == localhost ]]
}

# True if process PID exists and is not a zombie (a dead child we have not reaped yet).
services_pid_alive() {
    local pid=$1 stat
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/stat ]]; then
        stat=$(<"/proc/$pid/stat") || return 1
        stat=${stat##*) }           # the fields after "(comm) "; the first is the state
        [[ ${stat%% *} != Z ]]
    fi
}

# --- PostgreSQL --------------------------------------------------------------------------------

# Prints the directory holding initdb and pg_ctl (wanted major version, else the highest).
services_pg_bindir() {
    local want=${1:-} dir
    if [[ -n $want && -x /usr/lib/postgresql/$want/bin/pg_ctl ]]; then
        echo "/usr/lib/postgresql/$want/bin"
        return 0
    fi
    [[ -n $want ]] && return 1
    # Debian keeps server binaries out of PATH, one directory per major version.
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then
        echo "$dir"
        return 0
    fi
    # Elsewhere (e.g. a source build) they are usually on PATH.
    dir=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
    if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
        echo "$dir"
        return 0
    fi
    return 1
}

# Runs a PostgreSQL server program as the owner of the cluster. PostgreSQL refuses to run as root,
# so root runs it as the `postgres` system user. `cd /` because that user may not be allowed into
# the caller's working directory.
services_as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

services_ensure_pg_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    if ! id -u postgres >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin postgres ||
            services_die "could not create the postgres system user"
    fi
    command -v runuser >/dev/null 2>&1 || services_die "runuser (util-linux) is needed to run PostgreSQL as user postgres"
}

# Installs the PostgreSQL server packages without letting them create and start a cluster of
# their own (Debian's default `main` cluster uses password auth and would hold port 5432).
services_install_pg_server() {
    if [[ $(id -u) -eq 0 ]]; then
        local conf=/etc/postgresql-common/createcluster.conf
        mkdir -p "$(dirname "$conf")"
        if [[ ! -e $conf ]]; then
            echo 'create_main_cluster = false' >"$conf"
        elif grep -Eq '^[[:space:]]*create_main_cluster' "$conf"; then
            sed -i -E 's/^[[:space:]]*create_main_cluster.*/create_main_cluster = false/' "$conf"
        else
            echo 'create_main_cluster = false' >>"$conf"
        fi
    fi
    services_apt_install "the PostgreSQL server" postgresql postgresql-client
}

# Sets SERVICES_PG_DATA to the project-local cluster's directory: the existing one, or where to
# create it.
#
# Without root it is .run/postgres, owned by the caller. As root the server has to run as the
# `postgres` user, which cannot enter a checkout inside a folder only root may enter (a clone in
# /root, mode 700). So root keeps the cluster in $SERVICES_STATE_DIR/<checkout id>/postgres (the
# id is a hash of the checkout's path; the folder's `checkout` file names the checkout) and makes
# .run/postgres a symlink to it. A cluster that an earlier version made in .run/postgres itself is
# still used where it is.
services_pg_locate_data() {
    local link="$SERVICES_RUN_DIR/postgres" here target owner
    here=$(cd "$SERVICES_REPO_ROOT" && pwd -P)
    if [[ -L $link ]]; then
        target=$(readlink -f "$link" 2>/dev/null || true)
        if [[ -n $target && -d $target ]]; then
            owner=$(cat "${target%/*}/checkout" 2>/dev/null || true)
            if [[ -n $owner && $owner != "$here" ]]; then
                # A copied checkout (cp -a) brings the symlink along; two checkouts must not share
                # a cluster. A checkout that was moved finds its own cluster and takes it along.
                if [[ -L $owner/.run/postgres && $(readlink -f "$owner/.run/postgres") == "$target" ]]; then
                    services_die "$link points to the PostgreSQL cluster of the checkout $owner (is this a copy of it?); remove $link to have one made for this checkout"
                fi
                printf '%s\n' "$here" >"${target%/*}/checkout"
            fi
            SERVICES_PG_DATA=$target
            return 0
        fi
        services_log "PostgreSQL: $link points to $(readlink "$link"), which is gone; making a new cluster"
        rm -f "$link"
    elif [[ -d $link ]]; then
        if [[ $(id -u) -ne 0 || -f $link/PG_VERSION ]]; then
            SERVICES_PG_DATA=$link
            return 0
        fi
        # Root, and an empty folder left by an earlier version whose initdb could not reach it.
        rmdir "$link" 2>/dev/null ||
            services_die "$link exists but is not a PostgreSQL cluster; move it away and run again"
    elif [[ -e $link ]]; then
        services_die "$link exists but is not a directory; move it away and run again"
    fi
    if [[ $(id -u) -ne 0 ]]; then
        SERVICES_PG_DATA=$link
    else
        SERVICES_PG_DATA="$SERVICES_STATE_DIR/$(printf '%s' "$here" | sha256sum | cut -c 1-16)/postgres"
    fi
}

# Dies unless the postgres user (root runs the server as it) may write the cluster directory DATA.
services_pg_check_reachable() {
    local data=$1
    [[ $(id -u) -eq 0 ]] || return 0
    [[ $(stat -c %U "$data") == postgres ]] ||
        services_die "$data is owned by $(stat -c %U "$data"), not postgres; fix with: chown -R postgres:postgres $data"
    runuser -u postgres -- test -w "$data" ||
        services_die "user postgres cannot reach $data (a parent folder is not searchable by others); make the parents searchable (chmod o+x), or delete $data (its data is lost) to have a new cluster made where postgres can reach it"
}

# Sets SERVICES_PG_BINDIR to the server binaries for the cluster in DATA: those of its major
# version when it holds one, else the newest installed (installing the server when there is
# none). Makes sure the `postgres` user exists when root.
services_pg_select_bindir() {
    local data=$1 version
    if ! services_pg_bindir >/dev/null; then
        services_install_pg_server
    fi
    services_ensure_pg_user
    if [[ -f $data/PG_VERSION ]]; then
        # Reuse the cluster an earlier run created, with the binaries of its major version.
        version=$(<"$data/PG_VERSION")
        SERVICES_PG_BINDIR=$(services_pg_bindir "$version") ||
            services_die "$data was created by PostgreSQL $version, which is not installed; install postgresql-$version, or delete $data (its data is lost) to create a new cluster"
    else
        if [[ -d $data && -n $(ls -A "$data" 2>/dev/null) ]]; then
            services_die "$data exists but is not a PostgreSQL cluster; move it away and run again"
        fi
        SERVICES_PG_BINDIR=$(services_pg_bindir) || services_die "PostgreSQL server binaries (initdb, pg_ctl) not found"
    fi
}

# Creates a cluster in DATA (new or empty; as root, the `postgres` user must be able to reach it)
# with the binaries of SERVICES_PG_BINDIR: trust auth, UTF-8, C locale.
services_pg_initdb() {
    local data=$1 out
    mkdir -p "$data"
    chmod 700 "$data"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$data"; fi
    services_pg_check_reachable "$data"
    # C locale: always available, even in minimal containers without generated locales.
    if ! out=$(services_as_pg "$SERVICES_PG_BINDIR/initdb" -D "$data" --auth=trust -U postgres \
        --encoding=UTF8 --locale=C 2>&1); then
        printf '%s\n' "$out" >&2
        services_die "initdb failed for $data (output above)"
    fi
}

# Starts the cluster in DATA on 127.0.0.1:PORT with the binaries of SERVICES_PG_BINDIR and waits
# until it accepts connections. WHAT names it in messages.
services_pg_start() {
    local data=$1 port=$2 what=${3:-"the cluster in $1"} bindir=$SERVICES_PG_BINDIR log socket_dir
    local timeout=${SERVICES_START_TIMEOUT:-60} setting extra=""
    shift 3 || shift $#
    # Further arguments are server settings NAME=VALUE (values without spaces or quotes).
    for setting in "$@"; do
        [[ $setting =~ ^[a-z_.]+=[^\ \'\"]+$ ]] || services_die "not a PostgreSQL setting NAME=VALUE: $setting"
        extra+=" -c $setting"
    done
    services_pg_check_reachable "$data"
    services_pg_find_isready

    # Log and socket live inside the cluster directory, so everything is in one place.
    # A Unix socket path may not exceed ~107 bytes; in a deeply nested checkout go TCP-only.
    log="$data/postgres.log"
    socket_dir="$data"
    if (( ${#socket_dir} + 20 > 100 )); then socket_dir=""; fi

    services_log "PostgreSQL: starting $what on 127.0.0.1:$port (log: $log) ..."
    # -W: do not let pg_ctl wait; we poll pg_isready below, with a deadline.
    services_as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -W \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$socket_dir' -c max_connections=200$extra" \
        start </dev/null >/dev/null 2>&1 ||
        services_die "pg_ctl could not start PostgreSQL from $data; see $log"

    local started=$SECONDS deadline=$((SECONDS + timeout)) pid
    until "$SERVICES_PG_ISREADY" -q -h 127.0.0.1 -p "$port" -t 1; do
        if (( SECONDS >= deadline )); then
            services_die "PostgreSQL did not become ready on 127.0.0.1:$port within ${timeout}s; see $log"
        fi
        # The postmaster replaces postmaster.pid at once; after a grace period a missing or dead
        # pid means it exited (e.g. bad setting), so there is no point waiting out the deadline.
        if (( SECONDS - started >= 3 )); then
            pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
            services_pid_alive "$pid" ||
                services_die "PostgreSQL exited during start-up; see $log"
        fi
        sleep 0.2
    done
    local as_user=""
    if [[ $(id -u) -eq 0 ]]; then as_user="runuser -u postgres -- "; fi
    services_log "PostgreSQL: ready on 127.0.0.1:$port (stop it with: $as_user$bindir/pg_ctl -D $data stop)"
}

# Starts (creating it first if needed) the project-local cluster (see services_pg_locate_data) on
# 127.0.0.1:PORT.
services_start_local_pg() {
    local port=$1 data state

    mkdir -p "$SERVICES_RUN_DIR"
    services_pg_locate_data
    data=$SERVICES_PG_DATA
    if [[ $(id -u) -eq 0 && $data == "$SERVICES_RUN_DIR/postgres" ]]; then
        # A cluster inside the checkout: let the postgres user pass through .run (not list it).
        chmod o+x "$SERVICES_RUN_DIR"
    fi

    if [[ -e $data && $(id -u) -ne 0 && ! -O $data ]]; then
        services_die "$data belongs to $(stat -c %U "$data"); run as that user (or root), or start PostgreSQL on $port yourself"
    fi
    services_pg_select_bindir "$data"
    if [[ ! -f $data/PG_VERSION ]]; then
        services_log "PostgreSQL: creating a project-local cluster in $data ..."
        if [[ $data != "$SERVICES_RUN_DIR/postgres" ]]; then
            # Root's cluster outside the checkout: folders the postgres user may pass through,
            # a note naming the checkout, and .run/postgres leading to it (made first, so that
            # even a failed start leaves a pointer to what it made).
            state=${data%/*}
            # umask 022: the folders it creates are searchable; existing ones are left as they are.
            (umask 022 && mkdir -p "$state") ||
                services_die "cannot create $state; set SERVICES_STATE_DIR to a folder root may write"
            (cd "$SERVICES_REPO_ROOT" && pwd -P) >"$state/checkout"
            ln -sfn "$data" "$SERVICES_RUN_DIR/postgres"
        fi
        services_pg_initdb "$data"
    fi
    services_pg_start "$data" "$port" "the project-local cluster"
}

# Sets SERVICES_PG_ISREADY to pg_isready (installing the client when it is missing) and makes
# sure psql is there.
services_pg_find_isready() {
    [[ -z ${SERVICES_PG_ISREADY:-} ]] || return 0
    # pg_isready comes with the client package; the server binaries are checked only if needed.
    SERVICES_PG_ISREADY=$(command -v pg_isready 2>/dev/null || true)
    if [[ -z $SERVICES_PG_ISREADY ]]; then
        local bindir
        if bindir=$(services_pg_bindir) && [[ -x $bindir/pg_isready ]]; then
            SERVICES_PG_ISREADY=$bindir/pg_isready
        else
            services_apt_install "the PostgreSQL client (pg_isready, psql)" postgresql-client
            SERVICES_PG_ISREADY=$(command -v pg_isready) || services_die "pg_isready still not found"
        fi
    fi
    command -v psql >/dev/null 2>&1 ||
        services_apt_install "the PostgreSQL client (psql)" postgresql-client
}

services_ensure_postgres() {
    local host=${PGHOST:-127.0.0.1} port=${PGPORT:-5432} rc timeout=${SERVICES_START_TIMEOUT:-60}
    [[ $host != /* ]] || services_die "PGHOST=$host is a socket directory; set it to a host name or IP address"

    services_pg_find_isready

    # pg_isready: 0 accepting, 1 rejecting (starting up or shutting down), 2 no response.
    rc=0
    "$SERVICES_PG_ISREADY" -q -h "$host" -p "$port" -t 3 || rc=$?
    if (( rc == 1 )); then
        # A server is there but not accepting yet: give it the start-up deadline, do not compete.
        services_log "PostgreSQL: the server on $host:$port is not accepting connections yet; waiting ..."
        local deadline=$((SECONDS + timeout))
        until "$SERVICES_PG_ISREADY" -q -h "$host" -p "$port" -t 1; do
            (( SECONDS < deadline )) ||
                services_die "the PostgreSQL server on $host:$port did not start accepting connections within ${timeout}s"
            sleep 0.2
        done
        rc=0
    fi
    if (( rc == 0 )); then
        services_log "PostgreSQL: using the server on $host:$port"
    elif ! services_is_loopback "$host"; then
        services_die "no PostgreSQL answers on $host:$port (PGHOST/PGPORT); start it, or unset PGHOST to use a local one"
    elif services_port_open 127.0.0.1 "$port"; then
        services_die "port $port is taken by something that is not PostgreSQL; free it or choose another PGPORT"
    else
        services_start_local_pg "$port"
    fi
    export DATABASE_SERVER_URL="postgres://postgres@$host:$port"
}

# --- Redis -------------------------------------------------------------------------------------

# Prints what the Redis server at HOST PORT answers to PING ("PONG" when usable).
services_redis_ping() {
    timeout 5 redis-cli -h "$1" -p "$2" ping 2>&1 </dev/null || true
}

services_start_local_redis() {
    local port=$1 dir="$SERVICES_RUN_DIR/redis" timeout=${SERVICES_START_TIMEOUT:-60}
    local log pidfile answer started deadline pid
    log="$dir/redis.log"
    pidfile="$dir/redis.pid"

    mkdir -p "$dir"
    services_log "Redis: starting a project-local server on 127.0.0.1:$port (log: $log) ..."
    # No persistence (--save "" --appendonly no): the read models are rebuilt from the events.
    # An explicit --pidfile, or a daemonized redis writes /var/run/redis_<port>.pid.
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "$dir" --logfile "$log" --pidfile "$pidfile" </dev/null >/dev/null 2>&1 ||
        services_die "redis-server could not start; see $log"

    started=$SECONDS
    deadline=$((SECONDS + timeout))
    while :; do
        answer=$(services_redis_ping 127.0.0.1 "$port")
        [[ $answer == PONG ]] && break
        if (( SECONDS >= deadline )); then
            services_die "Redis did not answer on 127.0.0.1:$port within ${timeout}s; see $log"
        fi
        # The daemon writes its pid file at once; missing or dead after a grace period = it exited.
        if (( SECONDS - started >= 3 )); then
            pid=$(cat "$pidfile" 2>/dev/null || true)
            services_pid_alive "$pid" || services_die "Redis exited during start-up; see $log"
        fi
        sleep 0.2
    done
    services_log "Redis: ready on 127.0.0.1:$port (stop it with: redis-cli -p $port shutdown nosave)"
}

services_ensure_redis() {
    local host=${REDIS_HOST:-127.0.0.1} port=${REDIS_PORT:-6379} answer
    command -v redis-cli >/dev/null 2>&1 || services_apt_install "the Redis client (redis-cli)" redis-tools

    answer=$(services_redis_ping "$host" "$port")
    if [[ $answer == PONG ]]; then
        services_log "Redis: using the server on $host:$port"
    elif [[ $answer == *LOADING* ]]; then
        services_die "the Redis server on $host:$port is still loading its data set; try again in a moment"
    elif [[ $answer == *NOAUTH* || $answer == *WRONGPASS* || $answer == *DENIED* ]]; then
        services_die "the Redis server on $host:$port refuses us ($answer); give the project a Redis without a password, or choose another REDIS_PORT"
    elif ! services_is_loopback "$host"; then
        services_die "no Redis answers on $host:$port (REDIS_HOST/REDIS_PORT); start it, or unset REDIS_HOST to use a local one"
    elif services_port_open 127.0.0.1 "$port"; then
        services_die "port $port is taken by something that is not Redis; free it or choose another REDIS_PORT"
    else
        if ! command -v redis-server >/dev/null 2>&1; then
            services_apt_install "the Redis server" redis-server redis-tools
            # The package may have started a Redis of its own on this very port: use it if so.
            answer=$(services_redis_ping 127.0.0.1 "$port")
        fi
        if [[ $answer == PONG ]]; then
            services_log "Redis: using the server on $host:$port"
        else
            services_start_local_redis "$port"
        fi
    fi
    export REDIS_URL="redis://$host:$port"
}

# --- NATS --------------------------------------------------------------------------------------

# The probe below, run in a child bash under `timeout`: connects to HOST PORT, reads the server's
# INFO line, then asks JetStream for the account's info ($JS.API.INFO, a request any JetStream
# answers) and prints one word:
#   jetstream      a NATS server whose JetStream answered the request
#   no-jetstream   a NATS server, but JetStream did not answer (disabled for the server or account)
#   auth           a NATS server that wants credentials
#   not-nats       something that is not a NATS server
#   (nothing)      nothing accepts connections there
# `no_responders` makes a server without JetStream answer at once (a 503 status message) instead
# of leaving us to wait for an answer that never comes.
_services_nats_probe_inner() {
    local line payload
    exec 3<>"/dev/tcp/$1/$2" || return 0
    IFS= read -r -t 3 line <&3 || { echo not-nats; return 0; }
    line=${line%$'\r'}
    [[ $line == 'INFO {'* ]] || { echo not-nats; return 0; }
    if [[ $line == *'"auth_required":true'* ]]; then echo auth; return 0; fi
    # shellcheck disable=SC2016 # $JS.API.INFO is a NATS subject, not a variable
    printf '%s\r\n' 'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"name":"cqrs-shop services.sh"}' \
        'SUB _INBOX.cqrs_shop_probe 1' 'PUB $JS.API.INFO _INBOX.cqrs_shop_probe 0' '' >&3
    while IFS= read -r -t 3 line <&3; do
        line=${line%$'\r'}
        case $line in
            'MSG '*)
                IFS= read -r -t 3 payload <&3 || payload=""
                if [[ $payload == *account_info_response* && $payload != *'"error"'* ]]; then
                    echo jetstream
                else
                    echo no-jetstream
                fi
                return 0 ;;
            'HMSG '*) echo no-jetstream; return 0 ;;
            -ERR*[Aa]uthori[sz]ation* | -ERR*[Aa]uthentication*) echo auth; return 0 ;;
            -ERR*) echo no-jetstream; return 0 ;;
        esac
    done
    echo no-jetstream
}

# services_nats_probe HOST PORT: prints one word (see above) on what answers at HOST:PORT.
services_nats_probe() {
    timeout 8 bash -c "$(declare -f _services_nats_probe_inner); _services_nats_probe_inner \"\$@\"" \
        _ "$1" "$2" 2>/dev/null </dev/null || true
}

# The request below, run in a child bash under `timeout`: connects to HOST PORT, sends PAYLOAD to
# SUBJECT with a reply inbox, and prints the reply's payload (nothing if none came). There is no
# NATS command-line tool in Debian to do this with, and the protocol is a few text lines.
_services_nats_request_inner() {
    local line payload
    exec 3<>"/dev/tcp/$1/$2" || return 0
    IFS= read -r -t 3 line <&3 || return 0
    printf '%s\r\n' 'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"name":"cqrs-shop services.sh"}' \
        'SUB _INBOX.cqrs_shop_request 1' "PUB $3 _INBOX.cqrs_shop_request ${#4}" "$4" >&3
    while IFS= read -r -t 5 line <&3; do
        line=${line%$'\r'}
        case $line in
            'MSG '*)
                IFS= read -r -t 3 payload <&3 || payload=""
                printf '%s\n' "${payload%$'\r'}"
                return 0 ;;
            'HMSG '* | -ERR*) return 0 ;;
        esac
    done
}

# services_nats_request HOST PORT SUBJECT PAYLOAD: prints the reply's payload.
services_nats_request() {
    timeout 10 bash -c "$(declare -f _services_nats_request_inner); _services_nats_request_inner \"\$@\"" \
        _ "$1" "$2" "$3" "$4" 2>/dev/null </dev/null || true
}

nats_delete_stream() {
    local url=${1:?nats_delete_stream needs a NATS URL} name=${2:?nats_delete_stream needs a stream name}
    local address host port reply
    address=${url#nats://}
    address=${address##*@}
    host=${address%:*}
    port=${address##*:}
    # shellcheck disable=SC2016 # $JS.API... is a NATS subject, not a variable
    reply=$(services_nats_request "$host" "$port" "\$JS.API.STREAM.DELETE.$name" "")
    case $reply in
        *'"success":true'* | *'"err_code":10059'*) return 0 ;;   # deleted, or not there
        *) services_log "could not delete the NATS stream $name on $host:$port: ${reply:-no answer}"; return 1 ;;
    esac
}

# Prints the nats-server binary (Debian installs it in /usr/sbin, not on a user's PATH).
services_nats_server_bin() {
    command -v nats-server 2>/dev/null ||
        { [[ -x /usr/sbin/nats-server ]] && echo /usr/sbin/nats-server; }
}

# Starts a project-local NATS with JetStream on 127.0.0.1:PORT, its data in .run/nats/jetstream.
services_start_local_nats() {
    local port=$1 dir="$SERVICES_RUN_DIR/nats" timeout=${SERVICES_START_TIMEOUT:-60}
    local bin log pidfile started deadline pid answer
    bin=$(services_nats_server_bin) || services_die "nats-server not found"
    log="$dir/nats.log"
    pidfile="$dir/nats.pid"

    mkdir -p "$dir/jetstream"
    rm -f "$pidfile"
    services_log "NATS: starting a project-local server with JetStream on 127.0.0.1:$port (log: $log) ..."
    # nats-server cannot daemonize itself: setsid detaches it from the caller's session and
    # terminal, so it keeps running after the calling script ends, like the PostgreSQL and Redis
    # these functions start. It writes its pid file at once.
    setsid "$bin" -a 127.0.0.1 -p "$port" -js -sd "$dir/jetstream" -l "$log" -P "$pidfile" \
        </dev/null >/dev/null 2>&1 &

    started=$SECONDS
    deadline=$((SECONDS + timeout))
    while :; do
        answer=$(services_nats_probe 127.0.0.1 "$port")
        [[ $answer == jetstream ]] && break
        if (( SECONDS >= deadline )); then
            services_die "NATS did not answer with JetStream on 127.0.0.1:$port within ${timeout}s (last: ${answer:-no answer}); see $log"
        fi
        if (( SECONDS - started >= 3 )); then
            pid=$(cat "$pidfile" 2>/dev/null || true)
            services_pid_alive "$pid" || services_die "NATS exited during start-up; see $log"
        fi
        sleep 0.2
    done
    services_log "NATS: ready on 127.0.0.1:$port (stop it with: kill \$(cat $pidfile))"
}

# Makes a NATS server with JetStream answer on NATS_HOST:NATS_PORT; exports NATS_URL.
services_ensure_nats() {
    local host=${NATS_HOST:-127.0.0.1} port=${NATS_PORT:-4222} answer
    answer=$(services_nats_probe "$host" "$port")
    if [[ -z $answer ]] && services_is_loopback "$host" && ! services_nats_server_bin >/dev/null; then
        services_apt_install "the NATS server" nats-server
        # The package may have started a server of its own on this very port: look again.
        answer=$(services_nats_probe "$host" "$port")
    fi
    case $answer in
        jetstream) services_log "NATS: using the server on $host:$port (JetStream enabled)" ;;
        no-jetstream) services_die "the NATS server on $host:$port has no JetStream; restart it with -js (--jetstream), or choose another NATS_PORT" ;;
        auth) services_die "the NATS server on $host:$port wants credentials; give the project a NATS without auth, or choose another NATS_PORT" ;;
        not-nats) services_die "port $port is taken by something that is not NATS; free it or choose another NATS_PORT" ;;
        *)
            services_is_loopback "$host" ||
                services_die "no NATS answers on $host:$port (NATS_HOST/NATS_PORT); start it, or unset NATS_HOST to use a local one"
            services_start_local_nats "$port" ;;
    esac
    export NATS_URL="nats://$host:$port"
}

# --- browser and npm packages (for script-level test suites) ------------------------------------

# Prints the Chromium binary, if one is installed.
services_chromium_bin() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null
}

# ensure_chromium: Chromium is installed (Debian's `chromium`, installed as root when missing) and
# renders a page headless; exports CHROMIUM (its path). When it cannot, prints one line
# "cannot run browser tests: ..." and returns 1; it never exits the caller.
ensure_chromium() {
    local bin version profile dom
    if ! bin=$(services_chromium_bin); then
        if ! services_apt_try_install Chromium chromium; then
            services_log "cannot run browser tests: $SERVICES_APT_ERROR"
            return 1
        fi
        bin=$(services_chromium_bin) || {
            services_log "cannot run browser tests: the chromium package installed no chromium command"
            return 1
        }
    fi
    version=$("$bin" --version 2>/dev/null </dev/null) || version="Chromium (version unknown)"
    # Render a tiny page as the browser tests will: headless, no sandbox (root), own profile.
    profile=$(mktemp -d) || { services_log "cannot run browser tests: mktemp failed"; return 1; }
    dom=$(timeout 60 "$bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --dump-dom 'data:text/html,<p id="probe">rendered</p>' 2>/dev/null </dev/null) || true
    rm -rf "$profile"
    if [[ $dom != *'<p id="probe">rendered</p>'* ]]; then
        services_log "cannot run browser tests: $bin (${version}) does not render a page headless; try it by hand: $bin --headless --no-sandbox --dump-dom about:blank"
        return 1
    fi
    export CHROMIUM=$bin
    services_log "Chromium: $version ($bin)"
}

# ensure_node_package_dir DIR: DIR/node_modules holds the packages of DIR/package.json: `npm ci`
# when DIR/package-lock.json exists (exactly the locked versions), else `npm install`; nothing
# when node_modules is newer than both files. Installs Debian's nodejs and npm (as root) when
# missing. Packages come from the npm registry npm is configured with (its cache first). When it
# cannot, prints one line "cannot install the npm packages of DIR: ..." and returns 1; it never
# exits the caller.
ensure_node_package_dir() {
    local dir=${1:?ensure_node_package_dir needs a folder} stamp cmd
    if [[ ! -f $dir/package.json ]]; then
        services_log "cannot install the npm packages of $dir: it has no package.json"
        return 1
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        if ! services_apt_try_install "Node.js and npm" nodejs npm; then
            services_log "cannot install the npm packages of $dir: $SERVICES_APT_ERROR"
            return 1
        fi
    fi
    # npm rewrites node_modules/.package-lock.json on every install: a fresh one means done.
    stamp="$dir/node_modules/.package-lock.json"
    if [[ -f $stamp && ! $dir/package.json -nt $stamp &&
        ( ! -f $dir/package-lock.json || ! $dir/package-lock.json -nt $stamp ) ]]; then
        return 0
    fi
    if [[ -f $dir/package-lock.json ]]; then cmd=ci; else cmd=install; fi
    services_log "npm $cmd in $dir ..."
    if ! (cd "$dir" && npm "$cmd" --prefer-offline --no-audit --no-fund --loglevel=error </dev/null >&2); then
        services_log "cannot install the npm packages of $dir: npm $cmd failed (output above)"
        return 1
    fi
}

# --- public ------------------------------------------------------------------------------------

# ensure_services [--nats]: PostgreSQL and Redis (and with --nats, NATS with JetStream).
# shellcheck disable=SC2120 # the argument is optional
ensure_services() {
    local nats=0 arg
    for arg in "$@"; do
        case $arg in
            --nats) nats=1 ;;
            *) services_die "ensure_services: unknown argument $arg" ;;
        esac
    done
    services_ensure_postgres
    services_ensure_redis
    if (( nats )); then services_ensure_nats; fi
}

# pg_cluster_start DATA PORT [NAME=VALUE...]: a throwaway cluster for a test that stops or
# crashes PostgreSQL, or a benchmark that reads its counters (never the one the project shares):
# creates it in DATA (a new or empty folder; as root, one the `postgres` user can reach, e.g.
# below a mode-755 folder) unless DATA holds one, starts it on 127.0.0.1:PORT with the settings
# given and waits until it accepts connections. Exits on failure. The caller stops it
# (pg_cluster_stop) and deletes DATA.
pg_cluster_start() {
    local data=${1:?pg_cluster_start needs a data folder} port=${2:?pg_cluster_start needs a port}
    shift 2
    services_pg_select_bindir "$data"
    if [[ ! -f $data/PG_VERSION ]]; then services_pg_initdb "$data"; fi
    services_pg_start "$data" "$port" "the cluster in $data" "$@"
}

# pg_cluster_stop DATA [MODE]: stops the cluster in DATA with pg_ctl stop -m MODE (fast by
# default; immediate is a crash: no checkpoint, recovery from the WAL at the next start) and
# returns once it is down. Does nothing when it is not running.
pg_cluster_stop() {
    local data=${1:?pg_cluster_stop needs a data folder} mode=${2:-fast} version bindir
    [[ -f $data/PG_VERSION && -f $data/postmaster.pid ]] || return 0
    version=$(<"$data/PG_VERSION")
    bindir=$(services_pg_bindir "$version") || services_die "PostgreSQL $version (of $data) is not installed"
    services_as_pg "$bindir/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop </dev/null >/dev/null 2>&1 ||
        services_die "pg_ctl could not stop the cluster in $data; see $data/postgres.log"
}

# ensure_nats: a NATS server with JetStream answers on NATS_HOST:NATS_PORT; exports NATS_URL.
ensure_nats() {
    services_ensure_nats
}

ensure_database() {
    local name=${1:?ensure_database needs a database name} exists
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || services_die "unsupported database name: $name"
    [[ -n ${DATABASE_SERVER_URL:-} ]] || services_die "ensure_database: call ensure_services first"

    exists=$(psql "$DATABASE_SERVER_URL/postgres" -X -q -t -A -v ON_ERROR_STOP=1 \
        -c "SELECT 1 FROM pg_database WHERE datname = '$name'" </dev/null) ||
        services_die "could not query $DATABASE_SERVER_URL/postgres"
    [[ $exists == 1 ]] && return 0

    if ! psql "$DATABASE_SERVER_URL/postgres" -X -q -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$name\"" </dev/null >/dev/null; then
        # Someone else may have created it in the meantime; only then is this not an error.
        exists=$(psql "$DATABASE_SERVER_URL/postgres" -X -q -t -A \
            -c "SELECT 1 FROM pg_database WHERE datname = '$name'" </dev/null 2>/dev/null || true)
        [[ $exists == 1 ]] || services_die "could not create database $name on $DATABASE_SERVER_URL"
    else
        services_log "PostgreSQL: created database $name"
    fi
}

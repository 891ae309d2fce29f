#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the submitit launcher test
# (tests/test_slurm.py) and for trying `hydra/launcher=slurm_cpu` by hand.
#
#   scripts/local_slurm.sh start    # install (if missing) + start; prints the seconds it took
#   eval "$(scripts/local_slurm.sh env)"   # point sbatch/sinfo/submitit at it (SLURM_CONF)
#   scripts/local_slurm.sh status
#   scripts/local_slurm.sh stop     # cancels its jobs, kills exactly the daemons it started
#
# Needs root and Debian (apt-get): packages munge slurmctld slurmd slurm-client slurmdbd
# mariadb-server. No systemd: mariadbd, munged (as the munge user), slurmdbd, slurmctld and
# slurmd are started directly, with every config, socket, log, database and PID file under
# $CLOUDML_SLURM_DIR (default /tmp/cloudml-slurm); nothing in /etc is changed except an
# /etc/hosts line when this host's name does not resolve. Accounting (slurmdbd + MariaDB) is
# not optional: without it submitit cannot see the state of a cancelled or killed job and
# waits for its result forever.
# Exit codes: 0 ok, 1 failed, 3 the packages are missing and cannot be installed here.
set -euo pipefail

STATE=${CLOUDML_SLURM_DIR:-/tmp/cloudml-slurm}
CLUSTER=${CLOUDML_SLURM_CLUSTER:-cloudml}
DB_PORT=${CLOUDML_SLURM_DB_PORT:-3307}   # MariaDB on 127.0.0.1 only; not 3306, to leave a system one alone
CTLD_PORT=${CLOUDML_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${CLOUDML_SLURM_SLURMD_PORT:-6818}
DBD_PORT=${CLOUDML_SLURM_DBD_PORT:-6819}
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
DAEMONS=(mariadb munged slurmdbd slurmctld slurmd)   # start order; stop runs it backwards
HOST=$(hostname -s)
export SLURM_CONF=$STATE/etc/slurm.conf

log() { echo "local_slurm: $*" >&2; }
die() { log "error: $*"; exit 1; }

pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null || true; }

# A live process (a zombie, exited but not yet reaped by init, counts as gone).
running() { [[ -r /proc/$1/stat ]] && [[ $(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

# The recorded PID is alive and still the program we started (not a recycled PID).
alive() {
    local pid comm
    pid=$(pid_of "$1")
    [[ -n $pid ]] && running "$pid" || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    case $1 in
        mariadb) [[ $comm == mariadbd || $comm == mysqld ]] ;;
        *) [[ $comm == "$1" ]] ;;
    esac
}

seconds_since() {  # seconds_since NANOSECONDS -> "2.071"
    local ms=$(( ($(date +%s%N) - $1) / 1000000 ))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what (logs: $STATE/log/)"
        sleep 0.2
    done
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        log "cannot install ${missing[*]}: needs root and apt-get"; exit 3
    fi
    log "installing ${missing[*]} ..."
    # Keep the packages' own init scripts from starting daemons we do not track.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    local ok=0
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$STATE/log/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            >>"$STATE/log/apt.log" 2>&1; then
        ok=1
    fi
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((!ok)); then
        log "cannot install ${missing[*]} (apt-get failed, see $STATE/log/apt.log):"
        tail -n 3 "$STATE/log/apt.log" >&2 || true
        exit 3
    fi
}

resolve_host() {
    getent hosts "$HOST" >/dev/null && return 0
    log "adding '127.0.0.1 $HOST' to /etc/hosts (the host name must resolve for slurmctld/slurmd)"
    echo "127.0.0.1 $HOST" >>/etc/hosts
}

write_configs() {
    mkdir -p "$STATE"/{etc,log,pids,munge,ctld,slurmd,run}
    chmod 755 "$STATE"
    # This machine's real CPUs and memory, as slurmd itself detects them.
    local node
    node=$(slurmd -C | head -n 1)
    [[ $node == NodeName=* ]] || die "slurmd -C gave no node line: $node"
    node="NodeName=$HOST ${node#* }"
    cat >"$SLURM_CONF" <<EOF
# Written by scripts/local_slurm.sh: single node, no cgroups, accounting through slurmdbd.
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket,cred_expire=10   # a requeued job may restart after 10 s (default 120)
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=5   # a requeued job starts within seconds of its begin time
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=60
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$STATE/munge/munge.socket   # the munge socket for slurmdbd connections
$node State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
DbdHost=$HOST
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$STATE/etc/slurmdbd.conf"   # slurmdbd refuses a readable one
}

spawn() {  # spawn NAME COMMAND...: run in the background, detached from our session; record the PID
    local name=$1; shift
    setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 &
    echo $! >"$STATE/pids/$name.pid"
}

start_mariadb() {
    # MariaDB drops to the mysql user: its data, socket, PID and log live in a directory it owns.
    local db=$STATE/db
    mkdir -p "$db"
    chown mysql:mysql "$db"
    if [[ ! -d $db/data/mysql ]]; then
        mariadb-install-db --no-defaults --user=mysql --datadir="$db/data" --auth-root-authentication-method=socket \
            --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
    fi
    spawn mariadb mariadbd --no-defaults --user=mysql --datadir="$db/data" --bind-address=127.0.0.1 \
        --port="$DB_PORT" --socket="$db/mysqld.sock" --pid-file="$db/mariadb.pid" \
        --log-error="$db/mariadb.log" --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 --skip-name-resolve
    wait_for 60 "MariaDB" mariadb-admin --no-defaults --socket="$db/mysqld.sock" ping
    mariadb --no-defaults --socket="$db/mysqld.sock" -u root <<'SQL'
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
}

start_munged() {
    chown munge:munge "$STATE/munge"
    chmod 711 "$STATE/munge"   # munged insists: only the socket directory is traversable by all
    if [[ ! -s $STATE/munge/munge.key ]]; then
        runuser -u munge -- mungekey --create --keyfile="$STATE/munge/munge.key"
    fi
    # munged daemonises itself; its own PID file gives the PID to record.
    runuser -u munge -- munged --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed" --num-threads=2 </dev/null >>"$STATE/log/munged.out" 2>&1
    wait_for 10 "munged's PID file" test -s "$STATE/munge/munged.pid"
    cp "$STATE/munge/munged.pid" "$STATE/pids/munged.pid"
    wait_for 10 "munged" bash -c "munge -S '$STATE/munge/munge.socket' -n | unmunge -S '$STATE/munge/munge.socket'"
}

start() {
    if [[ $(id -u) != 0 ]]; then log "needs root (apt-get, daemons, runuser)"; exit 3; fi
    mkdir -p "$STATE/log" "$STATE/pids"
    local all=1 d
    for d in "${DAEMONS[@]}"; do alive "$d" || all=0; done
    if ((all)) && sinfo -h >/dev/null 2>&1; then
        log "already running (state in $STATE)"
        return 0
    fi
    stop_daemons quiet   # a half-started cluster is restarted from scratch
    local t0 t_install
    t0=$(date +%s%N)
    install_packages
    t_install=$(seconds_since "$t0")
    t0=$(date +%s%N)
    resolve_host
    write_configs
    start_mariadb
    start_munged
    spawn slurmdbd slurmdbd -D
    wait_for 30 "slurmdbd" sacctmgr -n list cluster
    sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true   # no-op when it exists
    spawn slurmctld slurmctld -D -i
    wait_for 30 "slurmctld" scontrol ping
    spawn slurmd slurmd -D -N "$HOST"
    wait_for 60 "node $HOST to be idle" bash -c "sinfo -h -n '$HOST' -o %T | grep -qx idle"
    echo "local SLURM up in $(seconds_since "$t0") s (package install $t_install s);" \
        "cluster '$CLUSTER', node $HOST: $(sinfo -h -o '%c CPUs, %m MB')"
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop_daemons() {
    local quiet=${1:-} i d pid any=0
    if alive slurmctld; then  # cancel what still runs on our cluster before its daemons go
        squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null || true
        for _ in $(seq 50); do [[ -z $(squeue -h -o %A 2>/dev/null) ]] && break; sleep 0.2; done
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        d=${DAEMONS[i]}
        if alive "$d"; then
            pid=$(pid_of "$d")
            kill -TERM "$pid"
            for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
            running "$pid" && kill -KILL "$pid"
            [[ -z $quiet ]] && log "stopped $d (pid $pid)"
            any=1
        fi
        rm -f "$STATE/pids/$d.pid"
    done
    [[ -z $quiet ]] && ((any == 0)) && log "nothing running"
    return 0
}

status() {
    local rc=0 d
    for d in "${DAEMONS[@]}"; do
        if alive "$d"; then echo "$d: running (pid $(pid_of "$d"))"; else echo "$d: not running"; rc=1; fi
    done
    ((rc == 0)) && sinfo
    return $rc
}

case ${1:-} in
    start) start ;;
    stop) stop_daemons ;;
    status) status ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 start|stop|status|env  (state: \$CLOUDML_SLURM_DIR, default /tmp/cloudml-slurm)" >&2; exit 2 ;;
esac

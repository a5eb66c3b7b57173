#!/usr/bin/env bash
# Local single-node SLURM for testing the cluster path of the workflow.
#
#   bash .ci/slurm.sh start    install (if missing), configure and start munged,
#                              slurmctld and slurmd; wait until the node is idle
#   bash .ci/slurm.sh stop     stop the three daemons started by this script
#   bash .ci/slurm.sh status   show the daemons, sinfo and the SLURM_CONF to use
#   bash .ci/slurm.sh env      print "export SLURM_CONF=..." (eval "$(... env)")
#
# Needs root (apt-get, daemons as root, munged as the munge user) and no
# systemd. Every step is idempotent: "start" on a running SLURM only checks it.
#
# All state (config, munge key and socket, spool, logs, pid files) lives in
# $MMJSD_SLURM_DIR (default /tmp/mmjsd-slurm). The only file written outside
# it is the symlink /etc/slurm/slurm.conf -> $MMJSD_SLURM_DIR/etc/slurm.conf,
# so that plain `sinfo`/`sbatch` find the cluster; it is only created when no
# other slurm.conf is there, and removed again by "stop". Without it, export
# SLURM_CONF (see "env"). Set MMJSD_SLURM_NO_ETC_LINK=1 to never create it.
#
# Settings (environment):
#   MMJSD_SLURM_DIR          state directory              [/tmp/mmjsd-slurm]
#   MMJSD_SLURM_PARTITION    name of the single partition [debug]
#   MMJSD_SLURM_CTLD_PORT    slurmctld port               [6817]
#   MMJSD_SLURM_SLURMD_PORT  slurmd port                  [6818]
#   MMJSD_SLURM_TIMEOUT      seconds to wait for "idle"   [60]
#   MMJSD_SLURM_NODE_CPUS    advertise this many CPUs     [real count, slurmd -C]
#   MMJSD_SLURM_NODE_MEMORY_MB advertise this much memory [real, slurmd -C]
#                            (either one sets SlurmdParameters=config_overrides:
#                            for runners smaller than a job's request; nothing
#                            enforces memory here, there are no cgroups)
#   MMJSD_SLURM_NO_INSTALL=1 never run apt-get
#   MMJSD_SLURM_NO_ETC_LINK=1 never create /etc/slurm/slurm.conf
set -euo pipefail

STATE="${MMJSD_SLURM_DIR:-/tmp/mmjsd-slurm}"
PARTITION="${MMJSD_SLURM_PARTITION:-debug}"
CTLD_PORT="${MMJSD_SLURM_CTLD_PORT:-6817}"
SLURMD_PORT="${MMJSD_SLURM_SLURMD_PORT:-6818}"
TIMEOUT="${MMJSD_SLURM_TIMEOUT:-60}"
CONF="$STATE/etc/slurm.conf"
ETC_CONF=/etc/slurm/slurm.conf
MUNGE_DIR="$STATE/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
NODE="$(hostname -s)"

log() { printf '[slurm.sh] %s\n' "$*"; }
die() { printf '[slurm.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------- helpers

pid_alive() { # pidfile -> 0 if the process in it is alive
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

show_logs() {
    local f
    for f in "$STATE/log/munged.log" "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log"; do
        if [[ -f "$f" ]]; then
            printf '\n----- last 25 lines of %s -----\n' "$f" >&2
            tail -n 25 "$f" >&2 || true
        fi
    done
}

fail() { # message -> log tails on stderr, exit 1
    printf '[slurm.sh] ERROR: %s\n' "$*" >&2
    show_logs
    exit 1
}

need_root() {
    [[ "$(id -u)" == 0 ]] || die "must run as root (daemons run as root, munged as user munge)"
}

port_in_use() { # port -> 0 if something listens on it
    # /proc/net/tcp{,6} lists ports in hex; state 0A = LISTEN
    local hex
    hex="$(printf '%04X' "$1")"
    grep -qiE "^ *[0-9]+: [0-9A-F]+:${hex} [0-9A-F]+:[0-9A-F]+ 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    ((${#missing[@]} == 0)) && return 0
    [[ "${MMJSD_SLURM_NO_INSTALL:-0}" == 1 ]] && die "missing packages: ${missing[*]} (MMJSD_SLURM_NO_INSTALL=1)"
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: install SLURM and munge by hand"
    log "installing ${missing[*]} with apt-get (once)"
    export DEBIAN_FRONTEND=noninteractive
    # the packages' maintainer scripts try to start services; without systemd
    # that is a no-op or a harmless failure, which policy-rc.d makes explicit
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    local ok=1
    if ! apt-get update -qq >"/tmp/mmjsd-slurm-apt.log" 2>&1 \
        || ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"/tmp/mmjsd-slurm-apt.log" 2>&1; then
        ok=0
    fi
    if ((created_policy)); then rm -f "$policy"; fi
    if ((ok == 0)); then
        tail -n 30 /tmp/mmjsd-slurm-apt.log >&2
        die "apt-get install ${missing[*]} failed (full log: /tmp/mmjsd-slurm-apt.log)"
    fi
}

slurm_env() { # run a SLURM client against our config
    SLURM_CONF="$CONF" "$@"
}

node_state() { # -> compact state: "idle", "mix", "idle*" (not responding), "down*", ... or ""
    slurm_env sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -n 1 || true
}

# --------------------------------------------------------------------------- munge

start_munge() {
    install -d -o munge -g munge -m 0755 "$MUNGE_DIR"
    if [[ ! -s "$MUNGE_DIR/munge.key" ]]; then
        if [[ -s /etc/munge/munge.key ]]; then
            cp /etc/munge/munge.key "$MUNGE_DIR/munge.key"
        elif command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_DIR/munge.key"
        else
            dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_DIR/munge.key"
    chmod 0400 "$MUNGE_DIR/munge.key"
    if pid_alive "$MUNGE_DIR/munged.pid"; then
        log "munged already running (pid $(cat "$MUNGE_DIR/munged.pid"))"
    else
        rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
        # munge's own pid/seed/log live next to the socket, owned by munge
        touch "$STATE/log/munged.log" && chown munge:munge "$STATE/log/munged.log"
        log "starting munged (socket $MUNGE_SOCKET)"
        runuser -u munge -- munged \
            --socket="$MUNGE_SOCKET" \
            --key-file="$MUNGE_DIR/munge.key" \
            --pid-file="$MUNGE_DIR/munged.pid" \
            --seed-file="$MUNGE_DIR/munged.seed" \
            --log-file="$STATE/log/munged.log" \
            || fail "munged did not start"
    fi
    local _
    for _ in $(seq 1 20); do
        if munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    fail "munge credential round trip (munge -n | unmunge) fails on $MUNGE_SOCKET"
}

# --------------------------------------------------------------------------- slurm.conf

write_conf() {
    # The node line comes from slurmd -C: the real CPU layout and memory.
    local hw cpus mem
    hw="$(slurmd -C 2>/dev/null | head -n 1)" || true
    [[ "$hw" == NodeName=* ]] || die "slurmd -C did not report the hardware: '$hw'"
    cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
    mem="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
    [[ -n "$cpus" && -n "$mem" ]] || die "cannot parse CPUs/RealMemory from: $hw"
    # drop NodeName=...: we name the node ourselves, and the address is local
    hw="${hw#NodeName=* }"
    local overrides=""
    if [[ -n "${MMJSD_SLURM_NODE_CPUS:-}" || -n "${MMJSD_SLURM_NODE_MEMORY_MB:-}" ]]; then
        cpus="${MMJSD_SLURM_NODE_CPUS:-$cpus}"
        mem="${MMJSD_SLURM_NODE_MEMORY_MB:-$mem}"
        [[ "$cpus" =~ ^[0-9]+$ && "$mem" =~ ^[0-9]+$ ]] || die "MMJSD_SLURM_NODE_CPUS/MEMORY_MB must be integers"
        hw="CPUs=$cpus RealMemory=$mem"
        overrides="SlurmdParameters=config_overrides"
    fi
    install -d -m 0755 "$STATE/etc"
    cat >"$CONF.tmp" <<EOF
# Written by .ci/slurm.sh -- local single-node test cluster. Do not edit:
# "bash .ci/slurm.sh stop && bash .ci/slurm.sh start" rewrites it.
ClusterName=mmjsd-local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${MUNGE_SOCKET}
# no systemd and no cgroups in a CI container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: sacct cannot report, use squeue for job status
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
# finished jobs stay visible to "squeue --states=all" this long (seconds); the
# snakemake SLURM plugin only trusts squeue when this is >= 3x its first
# status-check delay
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
# GPU requests are rejected with a clear message (this node has none)
GresTypes=gpu
DefMemPerCPU=$((mem / cpus))
${overrides}
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/slurmd
SlurmctldPidFile=${STATE}/run/slurmctld.pid
SlurmdPidFile=${STATE}/run/slurmd.pid
SlurmctldLogFile=${STATE}/log/slurmctld.log
SlurmdLogFile=${STATE}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${NODE} NodeAddr=127.0.0.1 NodeHostname=${NODE} ${hw} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

link_etc_conf() {
    [[ "${MMJSD_SLURM_NO_ETC_LINK:-0}" == 1 ]] && return 0
    if [[ -L "$ETC_CONF" && "$(readlink "$ETC_CONF")" == "$CONF" ]]; then
        return 0
    fi
    if [[ -e "$ETC_CONF" || -L "$ETC_CONF" ]]; then
        log "NOTE: $ETC_CONF exists and is not ours; clients need: export SLURM_CONF=$CONF"
        return 0
    fi
    install -d -m 0755 "$(dirname "$ETC_CONF")"
    ln -s "$CONF" "$ETC_CONF"
}

unlink_etc_conf() {
    if [[ -L "$ETC_CONF" && "$(readlink "$ETC_CONF")" == "$CONF" ]]; then
        rm -f "$ETC_CONF"
    fi
}

# --------------------------------------------------------------------------- commands

cmd_start() {
    need_root
    install_packages
    install -d -m 0755 "$STATE" "$STATE/log" "$STATE/run" "$STATE/ctld" "$STATE/slurmd"

    local ctld_up=0 slurmd_up=0
    pid_alive "$STATE/run/slurmctld.pid" && ctld_up=1
    pid_alive "$STATE/run/slurmd.pid" && slurmd_up=1

    # Only (re)write the config while no daemon of ours uses it.
    if ((ctld_up == 0 && slurmd_up == 0)); then
        local p
        for p in "$CTLD_PORT" "$SLURMD_PORT"; do
            port_in_use "$p" && die "port $p is in use by another process (another SLURM?); set MMJSD_SLURM_CTLD_PORT/MMJSD_SLURM_SLURMD_PORT"
        done
        write_conf
    fi
    link_etc_conf
    start_munge

    if ((ctld_up)); then
        log "slurmctld already running (pid $(cat "$STATE/run/slurmctld.pid"))"
    else
        log "starting slurmctld"
        # -i: ignore unreadable state files from an earlier, killed run
        slurmctld -f "$CONF" -i || fail "slurmctld did not start"
    fi
    if ((slurmd_up)); then
        log "slurmd already running (pid $(cat "$STATE/run/slurmd.pid"))"
    else
        log "starting slurmd (node $NODE)"
        slurmd -f "$CONF" -N "$NODE" || fail "slurmd did not start"
    fi

    log "waiting up to ${TIMEOUT}s for node $NODE to become idle"
    local state="" t=0 resumed=0
    while ((t < TIMEOUT * 2)); do
        state="$(node_state)"
        case "$state" in
            idle | mix | alloc | comp) break ;; # no "*": the node answers slurmctld
            down* | drain* | fail*)
                # e.g. left "down" by an earlier unclean stop
                if ((resumed == 0)); then
                    slurm_env scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
                    resumed=1
                fi
                ;;
        esac
        pid_alive "$STATE/run/slurmctld.pid" || fail "slurmctld exited"
        pid_alive "$STATE/run/slurmd.pid" || fail "slurmd exited"
        sleep 0.5
        t=$((t + 1))
    done
    case "$state" in
        idle | mix | alloc | comp) ;;
        *) fail "node $NODE is '${state:-not reported by sinfo}' after ${TIMEOUT}s" ;;
    esac
    log "SLURM is up: node $NODE is $state in partition $PARTITION"
    slurm_env sinfo
    if [[ ! -L "$ETC_CONF" || "$(readlink "$ETC_CONF")" != "$CONF" ]]; then
        log "clients need: export SLURM_CONF=$CONF"
    fi
}

stop_pidfile() { # name pidfile
    local name="$1" pidfile="$2" pid _
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.25
    done
    log "$name did not stop after 10s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

cmd_stop() {
    need_root
    # cancel leftover jobs of this cluster so their processes end too
    if pid_alive "$STATE/run/slurmctld.pid"; then
        slurm_env scancel --full --state=RUNNING,PENDING "--partition=$PARTITION" >/dev/null 2>&1 || true
    fi
    stop_pidfile slurmd "$STATE/run/slurmd.pid"
    stop_pidfile slurmctld "$STATE/run/slurmctld.pid"
    stop_pidfile munged "$MUNGE_DIR/munged.pid"
    unlink_etc_conf
    log "stopped (state kept in $STATE; delete it for a clean start)"
}

cmd_status() {
    local rc=0 name pidfile
    for name in munged slurmctld slurmd; do
        case "$name" in
            munged) pidfile="$MUNGE_DIR/munged.pid" ;;
            *) pidfile="$STATE/run/$name.pid" ;;
        esac
        if pid_alive "$pidfile"; then
            log "$name: running (pid $(cat "$pidfile"))"
        else
            log "$name: not running"
            rc=1
        fi
    done
    if [[ -f "$CONF" ]]; then
        log "config: $CONF"
        log "clients: export SLURM_CONF=$CONF"
        if ((rc == 0)); then
            slurm_env sinfo || rc=1
            slurm_env squeue || rc=1
        fi
    else
        log "no config yet ($CONF): run 'bash .ci/slurm.sh start'"
        rc=1
    fi
    return "$rc"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    env) printf 'export SLURM_CONF=%q\n' "$CONF" ;;
    logs) show_logs 2>&1 ;;
    *)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac

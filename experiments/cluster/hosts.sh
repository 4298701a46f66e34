#!/usr/bin/env bash
# hosts.sh - H emulated hosts on one Linux machine, for running expgraph across "machines"
# that talk only over TCP (issue 10).  Needs root and Debian's iproute2.
#
#   hosts.sh up H [--rate R] [--cap up|both] [--slots S] --dir DIR
#       builds the hosts and writes DIR/hostfile, DIR/rsh-agent, DIR/mpirun, DIR/env
#   hosts.sh down --dir DIR              tears them down (kills what runs in them)
#   hosts.sh run H [--rate R] [--cap up|both] [--slots S] [--dir DIR] -- COMMAND...
#       up, runs COMMAND with DIR/env exported, down (also on failure, INT and TERM);
#       exits with COMMAND's status
#   hosts.sh counters --dir DIR          "host ns tx_bytes rx_bytes tx_packets rx_packets"
#                                        of every host's eth0, one line per host
#   hosts.sh link --dir DIR HOST up|down sets host HOST's (0-based) link up or down
#
# Topology.  A unique id I (6 hex digits from $$ and $RANDOM, checked free) names
#   eg<I>sw        a "switch" namespace holding the Linux bridge br0
#   eg<I>h0..      one namespace per host: lo up, eth0 = its end of a veth pair whose other
#                  end (p<i>) is a port of br0, address 10.A.B.(i+1)/24 with A.B from I.
# Nothing is created in the root namespace: no interface, no address, no route, so neither
# names nor the subnet can collide with the machine's network or with another copy of this
# script running at the same time; traffic only ever flows between these namespaces.
#
# Bandwidth cap (--rate, tc tbf, e.g. 100mbit or 1gbit).  A host's NIC at R is full duplex:
# R out and R in.  "up" (default "both") caps
#   - the host's egress: tbf on eth0 inside the host's namespace. This is the uplink; it
#     throttles at the sender, where TCP's small-queue back-pressure keeps it loss-free, and
#     is what bounds a gossip step (every host sends its model at rate <= R);
#   - with "both", also the host's ingress: tbf on the switch port p<i> (egress of the bridge
#     towards the host), so that a host receiving from several peers at once (exp, psgd)
#     cannot take in more than R either, as with a real switch port.
#
# Open MPI.  mpirun runs inside host 0's namespace (DIR/mpirun does that), so its OOB
# listener and every BTL connection live on the test subnet.  The hostfile lists the hosts
# by address; host 0's address is local to mpirun, so its ranks are forked directly, and for
# every other host Open MPI calls  DIR/rsh-agent HOST COMMAND  as it would call ssh.  The
# agent behaves like ssh: it refuses a host whose address does not answer from the caller's
# namespace (the TCP probe of port 22 must be refused, not time out), then runs COMMAND with
# /bin/sh -c in the host's namespace with a clean environment (env -i: like ssh, nothing of
# mpirun's environment is inherited; forward variables with -x VAR).  Each host also gets its
# own hostname (a UTS namespace named like its network namespace, mpirun's too): with one
# shared hostname Open MPI 4.1's daemons intermittently failed to start (1 launch in 5 hung
# with 8 hosts); now MPI_Get_processor_name and error messages name the host.
set -u
PROG=$(basename "$0")
die() { echo "$PROG: $*" >&2; exit 1; }
usage() { # usage [EXIT]: the command summary at the top of this file
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&"$(( ${1:-2} == 0 ? 1 : 2 ))"
    exit "${1:-2}"
}

# ---------------------------------------------------------------- state of one set of hosts
# DIR/state: shell assignments ID, N, SW, NS (space-separated), ADDRS, SUBNET
load_state() {
    [ -f "$1/state" ] || die "no hosts in $1 (no $1/state)"
    # shellcheck disable=SC1091
    . "$1/state"
}

# kill whatever runs in namespace $1 (only processes started in our own namespaces), then
# delete it; quiet, never fails
del_ns() {
    local ns=$1 pids i
    [ -e "/run/netns/$ns" ] || return 0
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -z "$pids" ] && break
        if [ "$i" -le 3 ]; then kill -TERM $pids 2>/dev/null; else kill -KILL $pids 2>/dev/null; fi
        sleep 0.2
    done
    ip netns del "$ns" 2>/dev/null || true
}

list_ns() { # list_ns ID: the namespaces of that id that exist
    local f ns
    for f in /run/netns/eg"$1"*; do
        ns=${f##*/}
        [[ -e $f && $ns =~ ^eg$1(h[0-9]+|sw)$ ]] && echo "$ns"
    done
}

# teardown ID: every namespace of that id (also half-built sets)
teardown() {
    local id=$1 ns
    for ns in $(list_ns "$id"); do
        del_ns "$ns"
    done
}

do_down() {
    local dir=$1
    load_state "$dir"
    teardown "$ID"
    rm -f "$dir/state"
    local left
    left=$(list_ns "$ID" | wc -l)
    [ "$left" -eq 0 ] || die "could not delete $left namespaces eg${ID}*"
}

# ---------------------------------------------------------------- building
# burst for tbf: at least 64 KiB, and 1 ms worth of the rate (1gbit: 125 KB)
tbf_args() {
    local rate=$1 bits
    bits=$(tc_rate_bits "$rate") || return 1
    local burst=$(( bits / 8 / 1000 ))
    [ "$burst" -lt 65536 ] && burst=65536
    # latency bounds the queue: 50 ms of backlog at most, then drops
    echo "rate $rate burst $burst latency 50ms"
}
tc_rate_bits() { # 100mbit -> 100000000 (tc's units: kbit, mbit, gbit, bit; k=1000)
    local r=${1,,} n u
    [[ $r =~ ^([0-9]+)(bit|kbit|mbit|gbit)?$ ]] || { echo "bad rate '$1' (use e.g. 100mbit, 1gbit)" >&2; return 1; }
    n=${BASH_REMATCH[1]}; u=${BASH_REMATCH[2]:-bit}
    case $u in bit) echo "$n" ;; kbit) echo $((n * 1000)) ;; mbit) echo $((n * 1000000)) ;; gbit) echo $((n * 1000000000)) ;; esac
}

BUILD_ID=""
on_build_fail() { # trap while building: leave nothing behind
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$BUILD_ID" ] && teardown "$BUILD_ID"
    [ "$rc" -eq 0 ] && rc=1
    exit "$rc"
}

do_up() { # do_up H RATE CAP SLOTS DIR
    local H=$1 rate=$2 cap=$3 slots=$4 dir=$5 i
    [[ $H =~ ^[0-9]+$ ]] && [ "$H" -ge 1 ] && [ "$H" -le 250 ] || die "H must be 1..250, got '$H'"
    [[ $slots =~ ^[0-9]+$ ]] && [ "$slots" -ge 1 ] || die "--slots must be >= 1"
    [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
    command -v ip >/dev/null && command -v tc >/dev/null || die "needs iproute2 (ip, tc)"
    [ -e "$dir/state" ] && die "$dir already holds hosts (hosts.sh down --dir $dir first)"
    local tbf=""
    if [ -n "$rate" ]; then tbf=$(tbf_args "$rate") || exit 2; fi
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd)

    trap on_build_fail EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # a unique id: the switch namespace is created first and atomically claims it
    local id=""
    for _ in 1 2 3 4 5 6 7 8; do
        id=$(printf '%06x' $(( ( ($$ << 8) ^ (RANDOM << 4) ^ RANDOM ) & 0xffffff )))
        if ip netns add "eg${id}sw" 2>/dev/null; then BUILD_ID=$id; break; fi
        id=""
    done
    [ -n "$id" ] || die "cannot create a network namespace (ip netns add failed: not root, no CONFIG_NET_NS?)"
    local a=$(( 1 + (0x$id >> 8) % 254 )) b=$(( 0x$id % 256 ))
    local subnet="10.$a.$b.0/24" sw="eg${id}sw" nss="" addrs=""
    ip -n "$sw" link set lo up || die "cannot configure namespace $sw"
    ip -n "$sw" link add br0 type bridge || die "cannot create a bridge (CONFIG_BRIDGE?)"
    # bridged frames must not go through any netfilter hooks
    ip netns exec "$sw" sh -c 'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -w "$f" ] && echo 0 > "$f"; done' 2>/dev/null
    ip -n "$sw" link set br0 up || die "cannot bring up br0"
    for ((i = 0; i < H; i++)); do
        local ns="eg${id}h$i" addr="10.$a.$b.$((i + 1))"
        ip netns add "$ns" || die "cannot create namespace $ns"
        ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns" || die "cannot create veth for $ns (CONFIG_VETH?)"
        ip -n "$sw" link set "p$i" master br0 || die "cannot attach p$i to br0"
        ip -n "$sw" link set "p$i" up || die "cannot bring up p$i"
        ip -n "$ns" link set lo up || die "cannot bring up lo in $ns"
        # no IPv6: its autoconfiguration chatter would only add noise to the byte counters
        ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > "$f"; done' 2>/dev/null
        ip -n "$ns" addr add "$addr/24" dev eth0 || die "cannot address eth0 in $ns"
        ip -n "$ns" link set eth0 up || die "cannot bring up eth0 in $ns"
        if [ -n "$tbf" ]; then
            # shellcheck disable=SC2086
            tc -n "$ns" qdisc add dev eth0 root tbf $tbf || die "tc tbf failed on $ns eth0 (CONFIG_NET_SCH_TBF?)"
            if [ "$cap" = both ]; then
                # shellcheck disable=SC2086
                tc -n "$sw" qdisc add dev "p$i" root tbf $tbf || die "tc tbf failed on $sw p$i"
            fi
        fi
        nss+="${nss:+ }$ns"; addrs+="${addrs:+ }$addr"
    done
    # wait until every host's link is up (veth carrier) and the bridge forwards
    local n0="eg${id}h0" ok=0
    for _ in $(seq 1 50); do
        ok=1
        for ((i = 0; i < H; i++)); do
            ip -n "eg${id}h$i" -o link show eth0 | grep -q 'LOWER_UP' || { ok=0; break; }
        done
        [ "$ok" -eq 1 ] && break
        sleep 0.1
    done
    [ "$ok" -eq 1 ] || die "links did not come up"

    # ---- files
    cat > "$dir/state" <<EOF
ID=$id
N=$H
SW=$sw
NS="$nss"
ADDRS="$addrs"
SUBNET=$subnet
RATE=$rate
CAP=$cap
EOF
    : > "$dir/hostfile"
    : > "$dir/hosts.map"
    for ((i = 0; i < H; i++)); do
        echo "10.$a.$b.$((i + 1)) slots=$slots" >> "$dir/hostfile"
        echo "10.$a.$b.$((i + 1)) eg${id}h$i h$i" >> "$dir/hosts.map"
    done
    cat > "$dir/rsh-agent" <<EOF
#!/usr/bin/env bash
# rsh agent for Open MPI (written by hosts.sh): AGENT [ssh options] HOST COMMAND...
# runs COMMAND as a remote shell would, in HOST's network namespace.
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done
host=\${1:?rsh-agent: no host}; shift
ns=\$(awk -v h="\$host" '\$1 == h || \$3 == h { print \$2; exit }' "$dir/hosts.map")
[ -n "\$ns" ] && [ -e "/run/netns/\$ns" ] || { echo "rsh-agent: \$host: no such host" >&2; exit 255; }
addr=\$(awk -v n="\$ns" '\$2 == n { print \$1 }' "$dir/hosts.map")
# like ssh: the host must answer on the network from where we are (a refused TCP connection
# to port 22 is an answer; a timeout or "no route" is not)
probe=\$(timeout 3 bash -c "exec 3<>/dev/tcp/\$addr/22" 2>&1); prc=\$?
case \$prc:\$probe in
  0:*|*refused*) ;; # something listens on 22, or the host refused: reachable
  124:*) echo "rsh-agent: connect to host \$host port 22: Connection timed out (\$ns unreachable)" >&2; exit 255 ;;
  *) echo "rsh-agent: connect to host \$host port 22: \${probe##*: } (\$ns unreachable)" >&2; exit 255 ;;
esac
exec env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="\${HOME:-/root}" \\
     USER="\${USER:-root}" LOGNAME="\${LOGNAME:-root}" SHELL=/bin/sh \\
     ip netns exec "\$ns" unshare --uts /bin/sh -c 'hostname "\$0" && exec /bin/sh -c "\$1"' "\$ns" "\$*"
EOF
    chmod +x "$dir/rsh-agent"
    local margs="--hostfile $dir/hostfile --mca plm_rsh_agent $dir/rsh-agent --mca plm_rsh_no_tree_spawn 1"
    margs+=" --mca btl self,tcp --mca btl_tcp_if_include $subnet --mca oob_tcp_if_include $subnet"
    # the emulated hosts share this machine's cores: a rank waiting for the network must
    # yield its core (Open MPI only does so by itself when it sees more ranks than slots)
    margs+=" --mca mpi_yield_when_idle 1"
    margs+=" -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"
    # variables that change numbers or threads must reach every rank: the agent, like ssh,
    # starts remote daemons with a clean environment (OPENBLAS_CORETYPE picks the BLAS
    # kernels: ranks on different kernels round differently)
    local v base=$margs
    for v in $(compgen -e | grep -E '^(OPENBLAS_|OMP_|EXPGRAPH_)'); do margs+=" -x $v"; done
    cat > "$dir/mpirun" <<EOF
#!/usr/bin/env bash
# mpirun on the emulated hosts (written by hosts.sh): runs in host 0's namespace and
# forwards (-x) the OPENBLAS_*, OMP_* and EXPGRAPH_* variables set when it is called
export OMPI_ALLOW_RUN_AS_ROOT=\${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=\${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
fwd=()
for v in \$(compgen -e | grep -E '^(OPENBLAS_|OMP_|EXPGRAPH_)'); do fwd+=(-x "\$v"); done
exec ip netns exec $n0 unshare --uts /bin/sh -c 'hostname $n0 && exec "\$@"' sh \\
     mpirun $base "\${fwd[@]}" "\$@"
EOF
    chmod +x "$dir/mpirun"
    cat > "$dir/env" <<EOF
# hosts.sh: $H emulated hosts, id $id, subnet $subnet, cap ${rate:-none} ($cap)
export EG_HOSTS_DIR=$dir
export EG_HOSTS_ID=$id
export EG_HOSTS_N=$H
export EG_HOSTS_SUBNET=$subnet
export EG_HOSTS_NS="$nss"
export EG_HOSTS_ADDRS="$addrs"
export EG_HOSTS_NS0=$n0
export EG_HOSTFILE=$dir/hostfile
export EG_RSH_AGENT=$dir/rsh-agent
# mpirun options; run mpirun itself in host 0's namespace, with its own hostname:
#   ip netns exec \$EG_HOSTS_NS0 unshare --uts sh -c 'hostname \$EG_HOSTS_NS0; exec mpirun \$MPIRUN_ARGS ...'

export MPIRUN_ARGS="$margs"
# or simply: \$EG_MPIRUN -np 4 expgraph run spec.yaml
export EG_MPIRUN=$dir/mpirun
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
EOF
    trap - EXIT INT TERM
    BUILD_ID=""
    echo "$PROG: $H hosts up: id $id, subnet $subnet, namespaces eg${id}h0..h$((H - 1)), cap ${rate:-none}${rate:+ ($cap)}; files in $dir" >&2
}

do_counters() {
    local dir=$1 i=0 ns
    load_state "$dir"
    for ns in $NS; do
        # /sys inside "ip netns exec" is the namespace's own
        ip netns exec "$ns" sh -c 'cd /sys/class/net/eth0/statistics &&
            echo "$(cat tx_bytes) $(cat rx_bytes) $(cat tx_packets) $(cat rx_packets)"' |
            sed "s/^/$i $ns /"
        i=$((i + 1))
    done
}

do_link() {
    local dir=$1 h=$2 st=$3
    load_state "$dir"
    [[ $h =~ ^[0-9]+$ ]] && [ "$h" -lt "$N" ] || die "no host $h"
    [ "$st" = up ] || [ "$st" = down ] || die "link state must be up or down"
    ip -n "eg${ID}h$h" link set eth0 "$st" && ip -n "$SW" link set "p$h" "$st"
}

# ---------------------------------------------------------------- command line
[ $# -ge 1 ] || usage
cmd=$1; shift
H="" RATE="" CAP=both SLOTS=1 DIR="" ARGS=()
if [ "$cmd" = up ] || [ "$cmd" = run ]; then
    [ $# -ge 1 ] || usage
    H=$1; shift
fi
while [ $# -gt 0 ]; do
    case $1 in
        --rate) RATE=${2:?--rate needs a value}; shift 2 ;;
        --rate=*) RATE=${1#*=}; shift ;;
        --cap) CAP=${2:?--cap needs up or both}; shift 2 ;;
        --slots) SLOTS=${2:?--slots needs a number}; shift 2 ;;
        --dir) DIR=${2:?--dir needs a directory}; shift 2 ;;
        --dir=*) DIR=${1#*=}; shift ;;
        --) shift; ARGS=("$@"); break ;;
        *) if [ "$cmd" = link ]; then ARGS+=("$1"); shift; else echo "$PROG: unknown argument '$1'" >&2; usage; fi ;;
    esac
done
[ "$CAP" = up ] || [ "$CAP" = both ] || die "--cap must be up or both"

case $cmd in
    up)
        [ -n "$DIR" ] || die "up needs --dir DIR"
        do_up "$H" "$RATE" "$CAP" "$SLOTS" "$DIR" ;;
    down)
        [ -n "$DIR" ] || die "down needs --dir DIR"
        do_down "$DIR" ;;
    counters)
        [ -n "$DIR" ] || die "counters needs --dir DIR"
        do_counters "$DIR" ;;
    link)
        [ -n "$DIR" ] && [ ${#ARGS[@]} -eq 2 ] || die "usage: link --dir DIR HOST up|down"
        do_link "$DIR" "${ARGS[0]}" "${ARGS[1]}" ;;
    run)
        [ ${#ARGS[@]} -ge 1 ] || die "run needs -- COMMAND..."
        own_dir=0
        if [ -z "$DIR" ]; then DIR=$(mktemp -d "${TMPDIR:-/tmp}/eg-hosts.XXXXXX") || die "mktemp failed"; own_dir=1; fi
        # build in a subshell (its own traps clean up a half-built set); then ours take over
        ( do_up "$H" "$RATE" "$CAP" "$SLOTS" "$DIR" ) || { [ "$own_dir" -eq 1 ] && rm -rf "$DIR"; exit 1; }
        child=""
        cleanup() {
            [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
            ( do_down "$DIR" ) 2>/dev/null
            [ "$own_dir" -eq 1 ] && rm -rf "$DIR"
        }
        trap 'cleanup' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        set -a
        # shellcheck disable=SC1091
        . "$DIR/env"
        set +a
        # in the background so that INT/TERM reach our trap at once
        "${ARGS[@]}" &
        child=$!
        wait "$child"
        rc=$?
        child=""
        exit "$rc" ;;
    -h|--help|help) usage 0 ;;
    *) echo "$PROG: unknown command '$cmd'" >&2; usage ;;
esac

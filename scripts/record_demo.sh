#!/usr/bin/env bash
# Record flowscope's demo capture (demo/demo.pcap) from real programs.
#
# Three network namespaces (a server and two clients) are joined by veth pairs to a
# Linux bridge that lives in a fourth namespace; nothing is configured in the caller's
# namespace and no packet can leave the machine. tcpdump captures on the bridge while:
#   server  (10.77.0.1, fd77::1)   python3 -m http.server on :80 and :8080,
#                                  dnsmasq (authoritative for demo.lan, --no-resolv,
#                                  --no-hosts), netcat sink on :9000
#   client  (10.77.0.10, fd77::10) dig A/AAAA/TXT/NXDOMAIN, curl (resolving through
#                                  dnsmasq) over IPv4 and IPv6, ping and ping -6,
#                                  a ~190 KiB netcat upload (text)
#   client2 (10.77.0.11, fd77::11) curl with a browser User-Agent on :8080, dig, ping -6
# See demo/README.md for what the capture contains.
#
# Usage: sudo scripts/record_demo.sh [OUTPUT.pcap]     (default: demo/demo.pcap)
# Needs root. Installs missing Debian packages (iproute2 tcpdump dnsmasq dnsutils curl
# iputils-ping netcat-openbsd). Takes about 10 s; every step is bounded by `timeout`.

set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "record_demo.sh: must run as root (network namespaces, tcpdump)" >&2
    exit 1
fi

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-"$ROOT_DIR/demo/demo.pcap"}

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v tcpdump >/dev/null || need_pkgs+=(tcpdump)
command -v dnsmasq >/dev/null || need_pkgs+=(dnsmasq)
command -v dig >/dev/null || need_pkgs+=(dnsutils)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v ping >/dev/null || need_pkgs+=(iputils-ping)
command -v nc >/dev/null || need_pkgs+=(netcat-openbsd)
if ((${#need_pkgs[@]})); then
    echo "installing: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=$(command -v python3)

# ---------------------------------------------------------------- names
TAG="fsdemo$$"
NS_LAN="$TAG-lan"
NS_SRV="$TAG-server"
NS_CLI="$TAG-client"
NS_CLI2="$TAG-client2"
ALL_NS=("$NS_CLI" "$NS_CLI2" "$NS_SRV" "$NS_LAN")
WORK=$(mktemp -d /tmp/fsdemo.XXXXXX)
PIDS=()

cleanup() {
    local rc=$? pid ns f
    set +e
    if ((rc != 0)); then
        for f in clients.log dnsmasq.log http80.log tcpdump.log; do
            [[ -s $WORK/$f ]] && { echo "--- $f (tail)"; tail -n 15 "$WORK/$f"; } >&2
        done
    fi
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for ns in "${ALL_NS[@]}"; do
        if ip netns list | grep -qw -- "$ns"; then
            # anything still running inside a namespace this script created
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill "$pid" 2>/dev/null
            done
        fi
    done
    sleep 0.2
    for ns in "${ALL_NS[@]}"; do
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    rmdir /etc/netns 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# foreground helper; background jobs call `ip netns exec` directly so that $! is the
# program's own pid (ip netns exec execs it), not a subshell's
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# wait_port NS PORT [tcp|udp]: bounded wait until something listens on PORT in NS
wait_port() {
    local ns=$1 port=$2 proto=${3:-tcp} flag=-Hltn i
    [[ $proto == udp ]] && flag=-Hlun
    for ((i = 0; i < 50; i++)); do
        if [[ -n $(in_ns "$ns" ss "$flag" "sport = :$port") ]]; then return 0; fi
        sleep 0.1
    done
    echo "record_demo.sh: nothing listening on $proto/$port in $ns" >&2
    return 1
}

# ---------------------------------------------------------------- topology
for ns in "${ALL_NS[@]}"; do
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
    # set before any interface exists so eth0 inherits them: no DAD probes, no router
    # solicitations (there is no router); MLD reports and neighbour discovery remain
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
done
# the bridge namespace only switches frames: no IPv6 of its own (no MLD/RS noise)
in_ns "$NS_LAN" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
in_ns "$NS_LAN" ip link add br0 type bridge stp_state 0 forward_delay 0
in_ns "$NS_LAN" ip link set br0 up

# connect NS (interface eth0, MAC) to the bridge through port PORT
attach() {
    local ns=$1 port=$2 mac=$3 v4=$4 v6=$5
    ip -n "$NS_LAN" link add "$port" type veth peer name eth0 netns "$ns"
    ip -n "$NS_LAN" link set "$port" master br0 up
    ip -n "$ns" link set eth0 address "$mac"
    # no TSO/GSO super-frames: capture wire-sized (<= 1514 byte) frames like a real LAN
    ip -n "$ns" link set eth0 gso_max_size 1514 gso_max_segs 1 ||
        echo "record_demo.sh: warning: cannot limit GSO on $ns/eth0" >&2
    ip -n "$ns" addr add "$v4/24" dev eth0
    ip -n "$ns" -6 addr add "$v6/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
}
attach "$NS_SRV" p-server 02:77:00:00:00:01 10.77.0.1 fd77::1
attach "$NS_CLI" p-client 02:77:00:00:00:10 10.77.0.10 fd77::10
attach "$NS_CLI2" p-client2 02:77:00:00:00:11 10.77.0.11 fd77::11

# clients resolve through the server's dnsmasq (ip netns exec bind-mounts this file)
for ns in "$NS_CLI" "$NS_CLI2"; do
    mkdir -p "/etc/netns/$ns"
    printf 'nameserver 10.77.0.1\noptions timeout:2 attempts:1\n' >"/etc/netns/$ns/resolv.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$ns/hosts"
done

# ---------------------------------------------------------------- servers
mkdir -p "$WORK/www"
cat >"$WORK/www/index.html" <<'EOF'
<!doctype html>
<html><head><title>flowscope demo</title></head>
<body><h1>flowscope demo server</h1><p>www.demo.lan, served by python3 -m http.server.</p>
<ul><li><a href="/hello.txt">hello.txt</a></li><li><a href="/data.json">data.json</a></li></ul>
</body></html>
EOF
echo "hello from the flowscope demo" >"$WORK/www/hello.txt"
printf '{"service": "flowscope-demo", "hosts": ["www.demo.lan", "files.demo.lan"]}\n' \
    >"$WORK/www/data.json"
# 58 KiB of text so one HTTP response spans many segments
for ((i = 0; i < 1024; i++)); do
    printf 'line %04d the quick brown fox jumps over the lazy dog....\n' "$i"
done >"$WORK/www/big.txt"

ip netns exec "$NS_SRV" "$PYTHON" -m http.server 80 --bind :: --directory "$WORK/www" \
    >"$WORK/http80.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_SRV" "$PYTHON" -m http.server 8080 --bind :: --directory "$WORK/www" \
    >"$WORK/http8080.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --no-poll --bind-interfaces --listen-address=10.77.0.1 --listen-address=fd77::1 \
    --user=root --group=root --pid-file= --log-facility=- --log-queries \
    --local=/demo.lan/ --domain=demo.lan \
    --host-record=www.demo.lan,10.77.0.1,fd77::1 \
    --host-record=files.demo.lan,10.77.0.1,fd77::1 \
    --host-record=client.demo.lan,10.77.0.10,fd77::10 \
    --host-record=client2.demo.lan,10.77.0.11,fd77::11 \
    --txt-record=demo.lan,"flowscope demo network" \
    >"$WORK/dnsmasq.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_SRV" timeout 20 nc -d -l 10.77.0.1 9000 >"$WORK/nc-received.bin" &
PIDS+=($!)

wait_port "$NS_SRV" 80
wait_port "$NS_SRV" 8080
wait_port "$NS_SRV" 53 udp
wait_port "$NS_SRV" 9000

# let the unsolicited IGMP/MLD reports that follow link-up die down before capturing
sleep 2.5

# ---------------------------------------------------------------- capture
mkdir -p "$(dirname "$OUT")"
CAP="$WORK/demo.pcap"
ip netns exec "$NS_LAN" tcpdump -i br0 --immediate-mode -U -n -s 2048 -B 8192 -Z root -w "$CAP" >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
PIDS+=($TCPDUMP_PID)
for ((i = 0; i < 50; i++)); do
    grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log" >&2; exit 1; }

UA="flowscope-demo/1.0 (curl; +https://github.com/flowscope)"
BROWSER_UA="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
T="timeout 5"
exec 3>&1 >"$WORK/clients.log"   # client chatter goes to a log; errors still show

# client: DNS, then HTTP by name (glibc resolver -> dnsmasq), ICMP, netcat upload
in_ns "$NS_CLI" $T dig +tries=1 +time=2 @10.77.0.1 www.demo.lan A
in_ns "$NS_CLI" $T dig +tries=1 +time=2 @10.77.0.1 www.demo.lan AAAA
in_ns "$NS_CLI" $T dig +tries=1 +time=2 @fd77::1 files.demo.lan AAAA
in_ns "$NS_CLI" $T dig +tries=1 +time=2 @10.77.0.1 demo.lan TXT
in_ns "$NS_CLI" $T dig +tries=1 +time=2 @10.77.0.1 nosuch.demo.lan A || true
in_ns "$NS_CLI" $T ping -c 3 -i 0.2 -W 1 10.77.0.1
in_ns "$NS_CLI" $T ping -6 -c 3 -i 0.2 -W 1 fd77::1
in_ns "$NS_CLI" $T curl -4 -sS -o /dev/null -A "$UA" http://www.demo.lan/
# three URLs in one curl run (http.server speaks HTTP/1.0: one connection each)
in_ns "$NS_CLI" $T curl -4 -sS -o /dev/null -o /dev/null -o /dev/null -A "$UA" \
    http://www.demo.lan/hello.txt http://www.demo.lan/data.json http://www.demo.lan/big.txt
in_ns "$NS_CLI" $T curl -4 -sS -o /dev/null -A "$UA" http://files.demo.lan/missing.html
in_ns "$NS_CLI" $T curl -6 -sS -o /dev/null -A "$UA" http://www.demo.lan/index.html
in_ns "$NS_CLI" $T curl -4 -sS -o /dev/null -I -A "$UA" http://www.demo.lan/data.json
seq -f 'flowscope demo upload, line %06g: 0123456789 abcdefghijklmnopqrstuvwxyz' 1 2500 |
    in_ns "$NS_CLI" $T nc -N 10.77.0.1 9000

# client2: a browser-like User-Agent on the second web port, DNS, ICMPv6
in_ns "$NS_CLI2" $T dig +tries=1 +time=2 @10.77.0.1 client2.demo.lan A
in_ns "$NS_CLI2" $T curl -4 -sS -o /dev/null -A "$BROWSER_UA" -H "Accept: text/html" \
    http://www.demo.lan:8080/
in_ns "$NS_CLI2" $T ping -6 -c 2 -i 0.2 -W 1 fd77::1

sleep 1
kill -INT "$TCPDUMP_PID"
for ((i = 0; i < 30; i++)); do
    kill -0 "$TCPDUMP_PID" 2>/dev/null || break
    sleep 0.1
done

exec >&3 3>&-
if [[ $OUT == *.pcapng ]]; then
    # tcpdump only writes pcap; convert if Wireshark's editcap is installed
    command -v editcap >/dev/null || { echo "record_demo.sh: .pcapng needs editcap (wireshark-common); use .pcap" >&2; exit 1; }
    editcap -F pcapng "$CAP" "$OUT"
else
    cp "$CAP" "$OUT"
fi
chmod 0644 "$OUT"
echo "received by netcat sink: $(wc -c <"$WORK/nc-received.bin") bytes"
grep -E "packets (captured|received|dropped)" "$WORK/tcpdump.log" || true
echo "wrote $OUT ($(wc -c <"$OUT") bytes)"

#!/usr/bin/env bash
# examples/cluster/run.sh — three fastgate nodes sharing one Redis (global
# rate limits) and one etcd (their config and their upstream's targets), on
# loopback, without Docker.
#
#   examples/cluster/run.sh          start everything, print curl lines, Ctrl-C stops it all
#   examples/cluster/run.sh check    run the three demonstrations, exit non-zero on a failure
#
# Ports (fixed, as in gateway.yaml): gateways 8081-8083, their admin APIs
# 9911-9913, upstreams 9101-9102, Redis 6390, etcd 2390 (peer 2391).
# Needs etcd (etcd-server), redis-server and curl; builds with `make build`
# (BIN=dir to build elsewhere).
set -euo pipefail

cd "$(dirname "$0")/../.."
MODE=${1:-run}
case $MODE in run | check) ;; *)
	echo "usage: $0 [check]" >&2
	exit 2
	;;
esac
BIN=${BIN:-bin}
HERE=examples/cluster
REDIS_PORT=6390
ETCD=127.0.0.1:2390
ETCD_PEER=127.0.0.1:2391
CONFIG_KEY=/fastgate/config
TARGETS=/fastgate/upstreams/svc/
NODES=(1 2 3)

need() {
	command -v "$1" >/dev/null || {
		echo "run.sh: $1 not found; install it (apt-get install $2)" >&2
		exit 2
	}
}
need etcd etcd-server
need redis-server redis-server
need curl curl
need base64 coreutils

open_port() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $REDIS_PORT 2390 2391 9101 9102 8081 8082 8083 9911 9912 9913; do
	if open_port "$p"; then
		echo "run.sh: port $p is in use; stop what listens there (another run.sh?)" >&2
		exit 2
	fi
done

WORK=$(mktemp -d)
declare -A PID
cleanup() {
	for name in "${!PID[@]}"; do
		kill "${PID[$name]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT NAME: wait up to 10 s for a listener.
wait_port() {
	for _ in $(seq 200); do
		open_port "$1" && return 0
		sleep 0.05
	done
	echo "run.sh: $2 not listening on port $1 after 10s; its log:" >&2
	cat "$WORK/$2.log" >&2 || true
	exit 1
}

b64() { printf %s "$1" | base64 -w0; }

# etcd_put KEY VALUE and etcd_del KEY use etcd's JSON gateway (v3 API),
# so nothing but curl is needed; `etcdctl put KEY VALUE` does the same.
etcd_put() {
	curl -sf -X POST "http://$ETCD/v3/kv/put" -d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}" >/dev/null
}
etcd_del() {
	curl -sf -X POST "http://$ETCD/v3/kv/deleterange" -d "{\"key\":\"$(b64 "$1")\"}" >/dev/null
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

echo "== building ($BIN/)"
make -s build BIN="$BIN" >/dev/null

echo "== starting redis on 127.0.0.1:$REDIS_PORT and etcd on $ETCD"
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PID[redis]=$!
etcd --name cluster-demo --data-dir "$WORK/etcd" \
	--listen-client-urls "http://$ETCD" --advertise-client-urls "http://$ETCD" \
	--listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
	--initial-cluster "cluster-demo=http://$ETCD_PEER" --log-level warn --logger zap >"$WORK/etcd.log" 2>&1 &
PID[etcd]=$!
wait_port $REDIS_PORT redis
wait_port 2390 etcd
for _ in $(seq 200); do
	curl -sf "http://$ETCD/health" | grep -q '"health":"true"' && break
	sleep 0.05
done

echo "== starting upstreams s1 (127.0.0.1:9101) and s2 (127.0.0.1:9102)"
for i in 1 2; do
	"$BIN/upstream" -listen "127.0.0.1:910$i" -name "s$i" >"$WORK/s$i.log" 2>&1 &
	PID[s$i]=$!
	wait_port "910$i" "s$i"
done

echo "== etcd: the config at $CONFIG_KEY, target s1 under $TARGETS"
etcd_put "${TARGETS}s1" '{"url": "http://127.0.0.1:9101"}'
etcd_put "$CONFIG_KEY" "$(cat $HERE/gateway.yaml)"

echo "== starting three gateways"
for i in "${NODES[@]}"; do
	"$BIN/fastgate" -config "etcd://$ETCD$CONFIG_KEY" -listen "127.0.0.1:808$i" \
		-admin-listen "127.0.0.1:991$i" -node-name "node$i" -log-level warn >"$WORK/node$i.log" 2>&1 &
	PID[node$i]=$!
done
for i in "${NODES[@]}"; do
	wait_port "808$i" "node$i"
	wait_port "991$i" "node$i"
done

if [[ $MODE == run ]]; then
	cat <<EOT

Three gateways: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083
(admin APIs on 9911-9913). Try:

  # served by s1, the one target in etcd
  curl -i http://127.0.0.1:8081/api/hello

  # 20 requests per hour for the whole cluster: the 21st gets 429 on any node
  for i in \$(seq 24); do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:808\$((i % 3 + 1))/api/limited; done; echo

  # add target s2 in etcd: every node balances over s1 and s2 (X-Stub-Name)
  curl -s -X POST http://$ETCD/v3/kv/put -d '{"key":"$(b64 "${TARGETS}s2")","value":"$(b64 http://127.0.0.1:9102)"}'
  for i in 1 2 3 4; do curl -s -D - -o /dev/null http://127.0.0.1:8082/api/hello | grep X-Stub-Name; done

  # change the config for all three nodes (edit $HERE/gateway.yaml first), then read each node's status
  curl -s -X POST http://$ETCD/v3/kv/put -d "{\"key\":\"$(b64 $CONFIG_KEY)\",\"value\":\"\$(base64 -w0 $HERE/gateway.yaml)\"}"
  curl -s -X POST http://$ETCD/v3/kv/range -d '{"key":"$(b64 $CONFIG_KEY/status/)","range_end":"$(b64 $CONFIG_KEY/status0)"}'

  # the nodes' metrics
  curl -s http://127.0.0.1:9911/metrics | grep fastgate_config_reloads_total

Logs in $WORK. Ctrl-C stops everything.
EOT
	wait "${PID[node1]}" "${PID[node2]}" "${PID[node3]}" || true
	exit 0
fi

fail() {
	echo "FAIL: $*" >&2
	for i in "${NODES[@]}"; do
		echo "--- node$i log:" >&2
		tail -n 20 "$WORK/node$i.log" >&2 || true
	done
	exit 1
}

# stub_name NODE PATH: who answered (X-Stub-Name), empty on a failure.
stub_name() {
	curl -s -m 2 -D - -o /dev/null "http://127.0.0.1:808$1$2" | tr -d '\r' | sed -n 's/^X-Stub-Name: //Ip'
}

# Every node serves s1 first (its discovery read etcd at start).
for i in "${NODES[@]}"; do
	for _ in $(seq 100); do
		[[ $(stub_name "$i" /api/hello) == s1 ]] && break
		sleep 0.05
	done
	[[ $(stub_name "$i" /api/hello) == s1 ]] || fail "node$i does not serve target s1 from etcd"
done

echo "== (a) global rate limit: 60 requests spread over the three nodes, limit 20 per hour for the cluster"
ok=0 limited=0 other=0
for n in $(seq 60); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:808$((n % 3 + 1))/api/limited")
	case $code in 200) ok=$((ok + 1)) ;; 429) limited=$((limited + 1)) ;; *) other=$((other + 1)) ;; esac
done
echo "   admitted $ok, rejected with 429: $limited, other: $other"
[[ $ok -eq 20 && $limited -eq 40 && $other -eq 0 ]] || fail "(a) want 20 admitted and 40 rejected across the cluster"

echo "== (b) target s2 put in etcd: time until each node serves from it (polled on the three at once)"
# poll_s2 NODE: print the ms from $start until NODE answers from s2, or
# "never" after 500 tries of two requests (round robin alternates s1, s2).
poll_s2() {
	for _ in $(seq 500); do
		if [[ $(stub_name "$1" /api/hello) == s2 || $(stub_name "$1" /api/hello) == s2 ]]; then
			echo $(($(now_ms) - start))
			return
		fi
	done
	echo never
}
start=$(now_ms)
etcd_put "${TARGETS}s2" 'http://127.0.0.1:9102'
for i in "${NODES[@]}"; do
	poll_s2 "$i" >"$WORK/s2.node$i" &
done
wait $(jobs -p | tail -n 3)
worst=0
for i in "${NODES[@]}"; do
	ms=$(cat "$WORK/s2.node$i")
	[[ $ms != never ]] || fail "(b) node$i never served the new target s2"
	echo "   node$i serves s2 ${ms} ms after the put"
	((ms > worst)) && worst=$ms
done
echo "   all three within ${worst} ms"

echo "== (c) node1 killed (SIGKILL) under load: 200 requests/s on each of node2 and node3 for 4 s"
"$BIN/loadgen" -quiet -scenario $HERE/survivor-load.json >"$WORK/load3.log" 2>&1 &
load3=$!
if ! "$BIN/loadgen" -quiet -scenario $HERE/node-failure.json -proc "node1=${PID[node1]}" >"$WORK/load2.log" 2>&1; then
	cat "$WORK/load2.log" >&2
	fail "(c) node2 failed requests while node1 died"
fi
if ! wait $load3; then
	cat "$WORK/load3.log" >&2
	fail "(c) node3 failed requests while node1 died"
fi
{ wait "${PID[node1]}"; } 2>/dev/null || true # reap it quietly: killed on purpose
unset 'PID[node1]'
open_port 8081 && fail "(c) node1 still listening after SIGKILL"
grep -iE 'requests|failed' "$WORK/load2.log" | head -n 3 | sed 's/^/   node2: /'
grep -iE 'requests|failed' "$WORK/load3.log" | head -n 3 | sed 's/^/   node3: /'
echo "   node1 is gone; node2 and node3 served every request"

echo "PASS: global rate limit, discovery from etcd, node failure"

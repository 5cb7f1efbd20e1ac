#!/bin/bash
# usage: bench/profile_10000.sh LABEL  (cProfile of `klingwatch submit --wait`, 10000 tasks / 500 slots,
# scale 0.05, nominal latency 20 ms; files in $OUT, default /tmp/prof10k; summaries: pstats)
set -e
W=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/prof10k}; mkdir -p $OUT; cd $OUT; test -f prompts.txt || seq 0 9999 | sed "s/^/bench prompt /" > prompts.txt
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$W/.venv/bin/klingwatch sandbox --port $PORT --time-scale 0.05 --seed 1 --slots video=500 \
  --access-key bench-access-key --secret-key bench-secret-key-0123456789abcdef0123456789 \
  --chaos nominal:20 > sandbox-$1.log 2>&1 &
SB=$!
sleep 4
rm -f db-$1.sqlite
export KLING_API_BASE=http://127.0.0.1:$PORT KLING_ACCESS_KEY=bench-access-key \
  KLING_SECRET_KEY=bench-secret-key-0123456789abcdef0123456789 KLINGWATCH_TIME_SCALE=0.05 \
  KLINGWATCH_DB=sqlite:///$OUT/db-$1.sqlite
START=$(date +%s)
/usr/bin/time -v $W/.venv/bin/python -c "import cProfile,sys; sys.argv=['klingwatch','submit','prompts.txt','--wait','--json']; from klingwatch.cli import main; cProfile.run('main()', 'prof-$1.out')" > submit-$1.out 2> submit-$1.err || true
END=$(date +%s)
echo "wall $((END-START)) s" > wall-$1.txt
curl -s http://127.0.0.1:$PORT/sandbox/stats > stats-$1.json
curl -s http://127.0.0.1:$PORT/sandbox/slots > slots-$1.json
curl -s http://127.0.0.1:$PORT/sandbox/tasks > tasks-$1.json
kill $SB

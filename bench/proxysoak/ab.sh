#!/usr/bin/env bash
# Alternating wrk runs against several proxies that are already serving, for comparing
# variants by hand (bench/README.md, "Profiling the proxy by hand"): each round runs
# wrk once against every target in the order given; at the end, per target, the medians
# of its round-by-round ratios to the last target (the reference, e.g. nginx) for req/s
# and p99. Ratios within a round hold on a noisy host where absolute figures do not.
#
#   bench/proxysoak/ab.sh ROUNDS SECONDS name:port... reference:port
#   bench/proxysoak/ab.sh 8 8 tend:18080 soak:18082 nginx:18090
#
# WRK_THREADS (default 2) and WRK_CONNS (default 32) set wrk -t and -c.
set -euo pipefail

if [[ $# -lt 4 ]]; then
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
rounds=$1 secs=$2
shift 2
ref=${*: -1}
ref=${ref%%:*}

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for ((i = 1; i <= rounds; i++)); do
	for t in "$@"; do
		name=${t%%:*} port=${t##*:}
		out=$(wrk -t"${WRK_THREADS:-2}" -c"${WRK_CONNS:-32}" -d"${secs}s" --latency "http://127.0.0.1:$port/")
		rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
		p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) v = v / 1000; else if (v ~ /ms$/) v = v + 0; else v = v * 1000; print v}' <<<"$out")
		printf '%d %s %s %s\n' "$i" "$name" "$rps" "$p99" | tee -a "$rows"
	done
done

# Per target: the medians over rounds of req/s, p99 (ms) and of the ratios to ref.
awk -v ref="$ref" '
	{ rps[$1, $2] = $3; p99[$1, $2] = $4; if (!($2 in seen)) { seen[$2] = 1; names[++n] = $2 } ; if ($1 > r) r = $1 }
	function median(a, k,   i, j, t) {
		for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
	}
	END {
		for (x = 1; x <= n; x++) {
			name = names[x]; k = 0; delete q; delete l; delete qr; delete lr
			for (i = 1; i <= r; i++) {
				if (!((i, name) in rps) || !((i, ref) in rps)) continue
				k++; q[k] = rps[i, name]; l[k] = p99[i, name]
				qr[k] = rps[i, name] / rps[i, ref]; lr[k] = p99[i, name] / p99[i, ref]
			}
			if (k == 0) continue
			printf "%-10s req/s %7.0f  p99 %6.2f ms", name, median(q, k), median(l, k)
			if (name != ref) printf "  vs %s: req/s %.2fx  p99 %.2fx", ref, median(qr, k), median(lr, k)
			printf "  (%d rounds)\n", k
		}
	}' "$rows"

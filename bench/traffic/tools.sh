#!/usr/bin/env bash
# Installs what bench/traffic drives besides Docker and tend, if missing: wrk (the load
# generator) and nginx-light (the peer proxy), from Debian's archive. The benchmark runs
# its own nginx with its own config in a temporary directory; the system service is not
# used (Debian's policy-rc.d, where present, keeps apt from starting it).
set -euo pipefail

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "bench/traffic/tools.sh: need root to install ${missing[*]}" >&2
	exit 1
fi
echo "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

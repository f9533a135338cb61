#!/usr/bin/env bash
# Installs what the browser tests need, from Debian's packages: Chromium (the
# harness runs /usr/lib/chromium/chromium directly) and zbar-tools (zbarimg,
# the independent QR decoder of the decode benchmark). Idempotent: does
# nothing when both are there. Needs root, as apt-get does.
set -euo pipefail

CHROMIUM=${LINKSIM_CHROMIUM:-/usr/lib/chromium/chromium}
missing=()
[[ -x "$CHROMIUM" ]] || missing+=(chromium)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)

if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-chromium: missing ${missing[*]}; as root, run:" >&2
		echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "install-chromium: installing ${missing[*]} (about a minute)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ ! -x "$CHROMIUM" ]]; then
	echo "install-chromium: $CHROMIUM is still missing after installing the chromium package" >&2
	exit 1
fi
echo "install-chromium: $("$CHROMIUM" --headless --no-sandbox --disable-gpu --version 2>/dev/null || echo "chromium (version unknown)") at $CHROMIUM; $(zbarimg --version 2>/dev/null | head -1 | sed 's/^/zbarimg /')"

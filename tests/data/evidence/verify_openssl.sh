#!/usr/bin/env bash
# Verify an llmguard attestation with jq, coreutils and OpenSSL (>= 3.0) only.
# usage: verify_openssl.sh attestation.dsse.json llmguard.pub
set -euo pipefail
att=$1 pub=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
jq -r .payload "$att" | base64 -d > "$tmp/payload"
jq -r '.signatures[0].sig' "$att" | base64 -d > "$tmp/sig"
type=$(jq -r .payloadType "$att")   # ASCII, so ${#type} is its length in bytes
{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(stat -c %s "$tmp/payload")"
  cat "$tmp/payload"; } > "$tmp/pae"
openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$tmp/pae" -sigfile "$tmp/sig" >&2
# only now, with the signature checked, read the statement: subjects as sha256sum lines
jq -r '.subject[] | "\(.digest.sha256)  \(.annotations.path)"' "$tmp/payload"

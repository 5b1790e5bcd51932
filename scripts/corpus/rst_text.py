"""reStructuredText (Sphinx sources) to readable plain text, for the `pydocs` corpus.

Not a full reST parser: a line-and-indentation pass that keeps what a reader of the rendered
page sees (headings, paragraphs, lists, signatures, admonitions, code) and drops markup and
metadata (underlines, targets, comments, index entries, directive options).
"""

import re

# Directives whose whole block is metadata or navigation, not text.
DROP = {
    "index", "toctree", "module", "currentmodule", "moduleauthor", "sectionauthor", "highlight",
    "include", "literalinclude", "image", "figure", "tabularcolumns", "testsetup", "testcleanup",
    "contents", "raw", "program", "miscnews", "limited-api-list", "sectnum", "meta", "default-role",
}
# Directives whose content is code, kept verbatim.
CODE = {
    "code-block", "sourcecode", "code", "doctest", "testcode", "testoutput", "productionlist",
    "parsed-literal",
}
# Directives whose arguments are not text (a builder name, a class): content only.
CONTENT_ONLY = {"only", "glossary", "container", "compound", "class", "hlist", "cssclass"}
# Admonition-like directives: a label, then the arguments and content.
LABELS = {
    "note": "Note:", "warning": "Warning:", "seealso": "See also:", "important": "Important:",
    "caution": "Caution:", "tip": "Tip:", "hint": "Hint:", "attention": "Attention:",
    "danger": "Danger:", "error": "Error:", "admonition": "", "impl-detail":
    "CPython implementation detail:", "availability": "Availability:",
    "versionadded": "New in version", "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version", "deprecated-removed": "Deprecated since version",
    "audit-event": "Raises an auditing event", "topic": "", "sidebar": "", "rubric": "",
}

# Labels that run into the first line of their content, as Sphinx renders them.
VERSIONED = {"versionadded", "versionchanged", "deprecated", "deprecated-removed"}
RUN_IN = VERSIONED | {"note", "warning", "impl-detail", "important", "caution", "tip", "hint"}

DIRECTIVE = re.compile(r"^\.\.\s+(?:\|[^|]+\|\s+)?([\w:.-]+)::(?:\s+(.*))?$")
ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")
TABLE_RULE = re.compile(r"^[=\-+| ]*[=\-+][=\-+| ]*$")
LIST_ITEM = re.compile(r"^(?:[*+-]|#\.|\d+\.|\(?[a-z\d]\))\s+(?=\S)")
FILE_FIELD = re.compile(r"^:(orphan|tocdepth|nosearch)\b")
FIELD = re.compile(r"^:([\w -]+):(\s)")
OPTION = re.compile(r"^:[\w -]+:(\s|$)")

# Inline markup, matched left to right so that literal text is never rewritten.
INLINE = re.compile(
    r"``(?P<lit>(?:[^`]|`(?!`))+?)``(?!\w)"
    r"|(?::(?P<role>[\w:.-]+):)`(?P<rtext>(?:[^`\\]|\\.)+)`"
    r"|`(?P<ref>(?:[^`\\]|\\.)+)`__?(?!\w)"
    r"|`(?P<interp>(?:[^`\\]|\\.)+)`"
    r"|\s?\[(?:#[\w-]*|\d+|\*)\]_(?!\w)"
    r"|(?<![\w*\\])\*\*(?P<strong>\S(?:.*?\S)?)\*\*(?![\w*])"
    r"|(?<![\w*\\])\*(?P<em>[^\s*](?:[^*]*?[^\s*\\])?)\*(?![\w*])"
    r"|\\(?P<esc>.)"
    r"|\\$"
)


def indent_of(line):
    return len(line) - len(line.lstrip(" "))


def role_text(role, text):
    """What Sphinx shows for :role:`text`."""
    text = re.sub(r"\\(.)", r"\1", text)
    title = re.match(r"^(.*?)\s*<([^<>]*)>$", text, re.S)
    if title and title.group(1):
        return title.group(1)
    if title:
        text = title.group(2)
    if role.endswith("pep"):
        return "PEP " + text
    if role.endswith("rfc"):
        return "RFC " + text
    if text.startswith("~"):
        return text[1:].split(".")[-1]
    return text.lstrip("!")


def _inline(m):
    if m.group("lit") is not None:
        return m.group("lit")
    if m.group("role") is not None:
        return role_text(m.group("role"), m.group("rtext"))
    if m.group("ref") is not None:
        return role_text("", m.group("ref"))
    if m.group("interp") is not None:
        return role_text("", m.group("interp"))
    if m.group("strong") is not None:
        return m.group("strong")
    if m.group("em") is not None:
        return m.group("em")
    if m.group("esc") is not None:
        return "" if m.group("esc") == " " else m.group("esc")
    return ""


def inline(text):
    return INLINE.sub(_inline, text)


def dedent(lines):
    width = min((indent_of(l) for l in lines if l.strip()), default=0)
    return [l[width:] for l in lines]


def take_block(lines, i, min_indent):
    """Lines from i on that are blank or indented at least min_indent; trailing blanks left."""
    j = i
    while j < len(lines) and (not lines[j].strip() or indent_of(lines[j]) >= min_indent):
        j += 1
    while j > i and not lines[j - 1].strip():
        j -= 1
    return lines[i:j], j


def literal_intro(text):
    """A paragraph ending in `::` introduces a literal block; returns the text to show."""
    if not text.rstrip().endswith("::"):
        return text, False
    stripped = text.rstrip()[:-2]
    if not stripped.strip():
        return "", True
    return (stripped + ":" if not stripped.endswith(" ") else stripped.rstrip()), True


def directive(name, args, body):
    """Text for one directive: its arguments, options and content (body already dedented)."""
    short = name.split(":")[-1]
    if short in DROP:
        return []
    signature = short not in CODE and short not in LABELS and short not in CONTENT_ONLY
    # A signature's arguments may go on over the next lines (one signature per line, or
    # lines joined by a trailing backslash) until a blank line or an option.
    arg_lines = [args] if args else []
    k = 0
    while signature and k < len(body) and body[k].strip() and not OPTION.match(body[k].strip()):
        arg_lines.append(body[k].strip())
        k += 1
    while k < len(body) and body[k].strip() and OPTION.match(body[k].strip()):
        k += 1
    content = dedent(body[k:])
    while content and not content[0].strip():
        content.pop(0)
    if short in CODE:
        return content
    rest = convert(content)
    if signature:
        out = re.sub(r"\s*\\\n", " ", "\n".join(arg_lines)).splitlines()
        return out + ([""] if out and rest else []) + rest
    if short in CONTENT_ONLY:
        return rest
    label = LABELS[short]
    head = inline(args)
    if short in VERSIONED:
        version, _, note = head.partition(" ")
        if short == "deprecated-removed":
            removed, _, note = note.partition(" ")
            version = f"{version}, will be removed in version {removed}"
        head = f"{version}: {note}".strip()
    first = " ".join(p for p in (label, head) if p)
    if first and short in RUN_IN and rest and rest[0].strip():
        return [f"{first} {rest[0]}"] + rest[1:]
    return ([first] if first else []) + ([""] if first and rest else []) + rest


def convert_lines(lines):
    out = []
    i = 0
    literal_next = False
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            out.append("")
            i += 1
            continue
        if indent_of(line) > 0:
            if literal_next:
                # The literal block ends at the first line indented less than its first.
                block, i = take_block(lines, i, indent_of(line))
                out.extend(dedent(block))
            else:
                block, i = take_block(lines, i, 1)
                width = min(indent_of(l) for l in block if l.strip())
                out.extend((" " * width + l) if l.strip() else "" for l in convert(dedent(block)))
            literal_next = False
            continue
        literal_next = False
        if line.startswith(".."):
            body, j = take_block(lines, i + 1, 1)
            m = DIRECTIVE.match(line.rstrip())
            if m:
                out.extend(directive(m.group(1), (m.group(2) or "").strip(), dedent(body)))
            elif re.match(r"^\.\.\s+\[[^\]]+\]\s", line):  # footnote: keep its text
                text = re.sub(r"^\.\.\s+\[[^\]]+\]\s+", "", line)
                out.extend(convert([text] + dedent(body)))
            # else: a comment, a hyperlink target or a substitution: dropped.
            i = j
            continue
        if ADORNMENT.match(line) or TABLE_RULE.match(line):
            i += 1  # heading over/underline, transition, or table border
            continue
        if FILE_FIELD.match(line):
            i += 1
            continue
        # A paragraph: consecutive lines at this indentation, or at a list item's text column.
        start = i
        item = LIST_ITEM.match(line)
        body_indent = len(item.group(0)) if item else 0
        while (i < len(lines) and lines[i].strip()
               and indent_of(lines[i]) in (0, body_indent) and not lines[i].startswith("..")
               and not (i > start and (ADORNMENT.match(lines[i]) or TABLE_RULE.match(lines[i])
                                       or LIST_ITEM.match(lines[i])))):
            i += 1
        para = lines[start:i]
        para[-1], literal_next = literal_intro(para[-1])
        # Inline markup may span lines (`:ref:` titles wrap), so the paragraph goes as one.
        para = [FIELD.sub(r"\1:\2", l) for l in para]  # `:author: X` reads as `author: X`
        text = inline("\n".join(para)).rstrip()
        if text.strip():
            out.extend(text.split("\n"))
    return out


def convert(lines):
    return convert_lines(lines)


def rst_to_text(source):
    """The readable text of one reST document."""
    lines = [l.rstrip() for l in source.expandtabs(8).splitlines()]
    out = convert(lines)
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def first_title(source):
    """The first section title, with markup removed, or None."""
    lines = source.splitlines()
    for a, b in zip(lines, lines[1:]):
        if a.strip() and ADORNMENT.match(b) and len(b.strip()) >= len(a.strip()) - 1 \
                and not ADORNMENT.match(a):
            return inline(a.strip())
    return None

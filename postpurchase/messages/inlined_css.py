"""Email CSS inlined once per template file, when templates load, not once per message.

Mail clients ignore ``<style>``, so sent HTML carries its styles on each element. The styles
are static: they depend on the template's elements, never on a message's values (autoescape
keeps values from adding elements). So each ``email/*.html.j2`` source is inlined once, with
the stylesheet of the template set (the ``<style>`` blocks of its HTML templates, removed from
where they were), and rendering is plain Jinja.

The inliner parses HTML, not Jinja: each Jinja construct is swapped for a placeholder first (a
comment between elements, a bare token inside a quoted attribute value) and put back after.
A source this cannot keep intact (a construct inside a tag but outside quotes, an element the
HTML parser would add, move or close differently, such as a ``<tbody>`` it implies) raises
``NotInlinable``; the renderer then inlines each message instead, as before. Selectors that
join elements of two files (``.content p`` with the ``p`` in a child template) are not seen
here: the renderer compares its first message of each template with per-message inlining.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from html.parser import HTMLParser

import css_inline

_CONSTRUCT = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)
_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)")
# An attribute opened with a double quote and not closed yet, at the end of a tag's text.
_OPEN_ATTRIBUTE = re.compile(r"""\s([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*"[^"]*$""")
# Structural and state selectors (:first-child, :hover, a + b, a ~ b): a loop's copies of
# one element would all match or miss what only some copies match in the sent message.
_SIBLING_OR_STATE = re.compile(r"[:+~]")
_MARK = "__postpurchase_jinja_{}__"
_TABLE_PARTS = frozenset({"table", "thead", "tbody", "tfoot", "tr"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})
_MARK_FOUND = re.compile(r"(?:<!--|&lt;!--)?__postpurchase_jinja_(\d+)__(?:-->|--&gt;)?")


class NotInlinable(ValueError):
    """A template source whose CSS cannot be inlined ahead of rendering (the reason why)."""


def stylesheet(sources: Mapping[str, str]) -> str:
    """The CSS of the ``<style>`` blocks in ``sources`` (name to template source), in order."""
    return "\n".join(block for name in sorted(sources) for block in _STYLE.findall(sources[name]))


def inline_source(source: str, css: str) -> str:
    """``source`` (a Jinja HTML template) with ``css`` applied to its elements' ``style``.

    A whole document (with ``<html``) is inlined as a document, its ``<style>`` removed;
    anything else (a child template's blocks, an included part) as a fragment. Raises
    NotInlinable when the result might not render what inlining each message renders.
    """
    if _SIBLING_OR_STATE.search(_selectors(css)):
        raise NotInlinable("the stylesheet has selectors that depend on siblings or state")
    constructs: list[str] = []
    marked = ""
    end = 0
    for match in _CONSTRUCT.finditer(source):
        marked += source[end : match.start()]
        end = match.end()
        constructs.append(match.group(0))
        marked += _placeholder(marked, match.group(0), len(constructs) - 1)
    marked += source[end:]
    inliner = css_inline.CSSInliner(keep_style_tags=False)
    if "<html" in marked.lower():
        inlined = inliner.inline(marked)
    else:
        inlined = inliner.inline_fragment(marked, css)
    if _tags(inlined) != _tags(_STYLE.sub("", marked)):
        raise NotInlinable("the HTML parser adds, drops or closes elements the source does not")
    restored: Counter[int] = Counter()

    def unmark(match: re.Match[str]) -> str:
        index = int(match.group(1))
        restored[index] += 1
        return constructs[index]

    result = _MARK_FOUND.sub(unmark, inlined)
    if sorted(restored.elements()) != list(range(len(constructs))):
        raise NotInlinable("a Jinja construct did not come through the HTML parser intact")
    return result


def _placeholder(before: str, construct: str, index: int) -> str:
    """What stands for a construct while the HTML is parsed, given the source before it."""
    token = _MARK.format(index)
    if before.rfind("<") <= before.rfind(">"):
        return f"<!--{token}-->"  # between elements or in text: a comment stays where it is
    tag = before[before.rfind("<") :]
    attribute = _OPEN_ATTRIBUTE.search(tag)
    if attribute is None:
        raise NotInlinable(f"Jinja inside a tag, outside a quoted attribute: {construct}")
    if attribute.group(1).lower() in ("class", "id", "style"):
        # Which rules apply, or what the element's own style is, would depend on the message.
        raise NotInlinable(f"Jinja in a {attribute.group(1)} attribute: {construct}")
    return token


def _selectors(css: str) -> str:
    """The selector parts of ``css`` (declarations and comments left out)."""
    return re.sub(r"\{[^}]*\}", " ", re.sub(r"/\*.*?\*/", "", css, flags=re.S))


def _tags(html: str) -> Counter[str]:
    """Start and end tags by name, in a form the parser's output can be compared with."""
    names = Counter(
        ("</" if m.group(0).startswith("</") else "<") + m.group(1).lower()
        for m in _TAG.finditer(html)
    )
    if "<html" not in html.lower():
        return names
    # A document: the parser's output always has these, the source may leave some implied.
    for name in ("html", "head", "body"):
        names[f"<{name}"] = names[f"</{name}"] = 1
    return names


class _Outline(HTMLParser):
    """A document as a mail client reads it: elements with their attributes in any order,
    text with each run of white space as one space, and none of the white space that a
    table holds between its rows and cells (HTML shows none of it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[object, ...]] = []
        self._text: list[str] = []
        self._open: list[str] = []

    def flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._text))
        self._text = []
        if text == " " and self._open and self._open[-1] in _TABLE_PARTS:
            return
        if text:
            self.items.append(("text", text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.flush()
        self.items.append(("start", tag, tuple(sorted(attrs, key=lambda a: a[0]))))
        if tag not in _VOID:
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.flush()
        self.items.append(("end", tag))
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_comment(self, data: str) -> None:
        self.flush()
        self.items.append(("comment", data))


def same_document(first: str, second: str) -> bool:
    """Whether two serialised HTML documents are the same document to a mail client."""
    outlines = []
    for document in (first, second):
        outline = _Outline()
        outline.feed(document)
        outline.close()
        outline.flush()
        outlines.append(outline.items)
    return outlines[0] == outlines[1]

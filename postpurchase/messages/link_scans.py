"""Finding a message's links with patterns that start with one literal character.

A pattern that starts with a set (``[Hh]ref``: the name in any case) has the regex engine
call its set test on every character of the document; one that starts with a literal
character is searched for with a plain comparison loop, several times cheaper. So the link
patterns start from a character inside the match whose case is spelled out (one pattern per
case, their matches merged here), and look behind it for the letters before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence


def leftmost_matches(patterns: Sequence[re.Pattern[str]], text: str) -> Iterator[re.Match[str]]:
    """The matches of ``patterns`` in ``text``, left to right, each starting at or after the
    end of the one before: what one pattern made of their alternation would find, when no
    two of them can match at the same place (each starts with its own literal character)
    and none matches the empty string.

    Each pattern's next match is searched for again only once the match before overlapped
    it: a match found from an earlier place is the one found from any later place up to its
    start (lookbehinds still see the text before where a search starts). Once a single
    pattern has matches left (in a message, the name in lower case), its own ``finditer``
    goes on from there.
    """
    found = {p: match for p in patterns if (match := p.search(text)) is not None}
    while len(found) > 1:
        first = min(found.values(), key=re.Match.start)
        yield first
        end = first.end()
        for pattern, match in list(found.items()):
            if match.start() < end:
                following = pattern.search(text, end)
                if following is None:
                    del found[pattern]
                else:
                    found[pattern] = following
    for pattern, match in found.items():
        yield match
        yield from pattern.finditer(text, match.end())

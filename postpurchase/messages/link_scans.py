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
    start (lookbehinds still see the text before where a search starts).
    """
    upcoming = [pattern.search(text) for pattern in patterns]
    while True:
        found = [match for match in upcoming if match is not None]
        if not found:
            return
        first = min(found, key=re.Match.start)
        yield first
        end = first.end()
        upcoming = [
            pattern.search(text, end) if match is not None and match.start() < end else match
            for pattern, match in zip(patterns, upcoming, strict=True)
        ]

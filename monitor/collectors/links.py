"""Links as the collectors read them: resolved against a base, http(s) only. Pure: no I/O.

One place for "urljoin, then keep only http and https": feed items, page links, `<base href>`, Telegram's
links and the Link headers of APIs all go through `absolute_url`.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urljoin, urlsplit

__all__ = ["absolute_url", "same_origin"]

_SCHEMES = ("http", "https")
# An absolute http(s) URL with an ASCII host name (and maybe a port) that urlsplit would take as it is: no parse needed
_PLAIN_ABSOLUTE = re.compile(r"https?://[A-Za-z0-9._-]+(?::[0-9]{1,5})?(?:[/?#]|\Z)")


def absolute_url(value: str | None, base: str, *, keep_fragment: bool = True) -> str | None:
    """`value` resolved against `base` when the result is http(s) with a host, else None (mailto:,
    javascript:, a bare "#", an unparsable address)."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    if value.startswith(("https://", "http://")):
        # already absolute: urljoin would only cost time (feeds hold thousands of links), and on a link without a
        # host ("https://?x") it would borrow the base's host, making a link the page never gave
        url = value
        if " " not in url and _PLAIN_ABSOLUTE.match(url):  # the common case: a host urlsplit would find
            return url if keep_fragment or "#" not in url else urldefrag(url).url
    else:
        try:
            url = urljoin(base, value)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not parts.netloc:
        return None
    return url if keep_fragment else urldefrag(url).url


def same_origin(a: str, b: str) -> bool:
    """Whether two addresses have the same scheme and host (and port)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme.lower(), pa.netloc.lower()) == (pb.scheme.lower(), pb.netloc.lower())

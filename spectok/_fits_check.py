"""A look at FITS headers before astropy reads a file: refuse what would make it hang.

A header claiming a huge number of axes or table columns (``NAXIS =
99999999999``, ``TFIELDS = 12689923599``; corruption or on purpose) sends
`astropy.io.fits` into a loop over that many items that takes hours and tens
of GB of memory before it fails. The FITS standard allows at most 999 of
each; `check_fits_header` walks the headers of a (possibly gzip-compressed)
FITS file and refuses larger values in milliseconds. Everything else about
the file is left to the readers.
"""

import gzip
from contextlib import nullcontext

__all__ = ["check_fits_header"]

_BLOCK = 2880
_CARD = 80
#: Counts astropy loops over, and the most the FITS standard (4.0, 4.4.1 and 7.2.1) allows.
_MAX_COUNTS = {b"NAXIS": 999, b"TFIELDS": 999}
_MAX_HEADER_BLOCKS = 10_000


def _value(card):
    try:
        return int(card[10:].split(b"/")[0].strip())
    except ValueError:
        return None


def _headers(f):
    """Yield the cards (keyword → raw value card) of each HDU header, skipping the data."""
    while True:
        cards = {}
        for _ in range(_MAX_HEADER_BLOCKS):
            block = f.read(_BLOCK)
            if len(block) < _BLOCK:
                return  # end of file, or truncated: the readers say what they make of it
            ends = False
            for start in range(0, _BLOCK, _CARD):
                card = block[start:start + _CARD]
                keyword = card[:8].rstrip()
                if keyword == b"END":
                    ends = True
                    break
                if card[8:10] == b"= ":
                    cards.setdefault(keyword, card)
            if ends:
                break
        else:
            return
        yield cards
        naxis = _value(cards.get(b"NAXIS", b""))
        if naxis is None or naxis > _MAX_COUNTS[b"NAXIS"]:
            return
        size = 1 if naxis else 0
        for k in range(1, naxis + 1):
            size *= max(_value(cards.get(b"NAXIS%d" % k, b"")) or 0, 0)
        bitpix = abs(_value(cards.get(b"BITPIX", b"")) or 8)
        pcount = max(_value(cards.get(b"PCOUNT", b"")) or 0, 0)
        gcount = max(_value(cards.get(b"GCOUNT", b"")) or 1, 1)
        n_bytes = bitpix * gcount * (pcount + size) // 8
        try:
            f.seek(-(-n_bytes // _BLOCK) * _BLOCK, 1)
        except (OSError, OverflowError):  # data claimed beyond any possible end of file
            return


def check_fits_header(source, name=None):
    """Raise if a FITS header of ``source`` claims more axes or columns than the standard allows.

    Files that are not FITS (nor gzip-compressed FITS) are left alone.

    Parameters
    ----------
    source : str, path-like or binary file object
        A file object must be seekable; it is left at the position it had.
    name : str, optional
        What to call the file in the message (default: the path, or the
        file object's ``name``).

    Raises
    ------
    OSError
        A header with ``NAXIS`` or ``TFIELDS`` above 999; the message names the file.
    """
    if hasattr(source, "read"):
        start = source.tell()
        try:
            _check(source, name or getattr(source, "name", "file object"))
        finally:
            source.seek(start)
        return
    with open(source, "rb") as raw:
        _check(raw, name or source)


def _check(raw, name):
    start = raw.tell()
    magic = raw.read(9)
    raw.seek(start)
    try:
        with gzip.GzipFile(fileobj=raw) if magic[:2] == b"\x1f\x8b" else nullcontext(raw) as f:
            if f.read(9) != b"SIMPLE  =":
                return
            f.seek(0 if f is not raw else start)
            for n, cards in enumerate(_headers(f)):
                for keyword, limit in _MAX_COUNTS.items():
                    count = _value(cards.get(keyword, b""))
                    if count is not None and count > limit:
                        raise OSError(f"{name}: HDU {n} claims {keyword.decode()} = {count} "
                                      f"(the FITS standard allows at most {limit}): corrupt "
                                      "FITS file")
    except (EOFError, gzip.BadGzipFile, ValueError):
        return  # a broken gzip stream: the readers report it

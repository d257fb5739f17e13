"""A look at FITS headers before astropy reads a file: refuse what would make it hang.

A header claiming a huge number of axes (``NAXIS = 99999999999``, from
corruption or on purpose) sends `astropy.io.fits` into a loop over that many
axes that takes hours and tens of GB of memory before it fails. The FITS
standard allows at most 999 axes; `check_fits_axes` walks the headers of a
(possibly gzip-compressed) FITS file and refuses larger values in
milliseconds. Everything else about the file is left to the readers.
"""

import gzip

__all__ = ["check_fits_axes"]

_BLOCK = 2880
_CARD = 80
_MAX_AXES = 999  # the FITS standard (4.0, section 4.4.1.1)
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
        if naxis is None or naxis > _MAX_AXES:
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


def check_fits_axes(path):
    """Raise if a FITS header of ``path`` claims more axes than the FITS standard allows.

    Files that are not FITS (nor gzip-compressed FITS) are left alone.

    Parameters
    ----------
    path : str or path-like

    Raises
    ------
    OSError
        A header with ``NAXIS`` above 999; the message names the file.
    """
    with open(path, "rb") as raw:
        magic = raw.read(9)
    opener = gzip.open if magic[:2] == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            if f.read(9) != b"SIMPLE  =":
                return
            f.seek(0)
            for n, cards in enumerate(_headers(f)):
                naxis = _value(cards.get(b"NAXIS", b""))
                if naxis is not None and naxis > _MAX_AXES:
                    raise OSError(f"{path}: HDU {n} claims NAXIS = {naxis} axes (the FITS "
                                  f"standard allows at most {_MAX_AXES}): corrupt FITS file")
    except (EOFError, gzip.BadGzipFile, ValueError):
        return  # a broken gzip stream: the readers report it

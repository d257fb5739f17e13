"""Files that are either complete or absent: written aside, flushed, then renamed."""

import os

__all__ = ["write_atomically"]


def write_atomically(path, write):
    """Write ``path`` with ``write(partial_path)``, flush it to disk, then rename it.

    A process killed while writing leaves ``path`` as it was (and a
    ``.partial`` file, which the next write replaces), so a reader never
    sees half a file.

    Parameters
    ----------
    path : `~pathlib.Path`
        The file to write.
    write : callable
        Called with the temporary path beside ``path``; writes the file there.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from spectok._atomic import write_atomically
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "numbers.txt"
    ...     write_atomically(path, lambda partial: partial.write_text("1 2 3"))
    ...     print(path.read_text(), sorted(p.name for p in path.parent.iterdir()))
    1 2 3 ['numbers.txt']
    """
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a process killed while writing
    write(partial)
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, path)

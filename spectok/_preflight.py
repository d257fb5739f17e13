"""Checks run before long jobs write anything: the output directory and free disk space.

They turn what would be a failure hours into a run (a read-only directory, a
full disk) into an error before any work is done.
"""

import errno
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["check_writable_directory", "check_free_space"]


def check_writable_directory(directory, what):
    """Raise unless ``directory`` exists, is a directory and a file can be created in it.

    Writing a probe file is the only reliable test: permission bits say
    nothing about read-only mounts, quotas or access control lists.

    Parameters
    ----------
    directory : path-like
    what : str
        What the directory is for, to name it in the error ("output directory").

    Raises
    ------
    FileNotFoundError, NotADirectoryError, PermissionError
        The directory is missing, is a file, or cannot be written.
    """
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"{what} {directory} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"{what} {directory} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise PermissionError(f"{what} {directory} is not writable ({error.strerror or error})"
                              ) from None


def check_free_space(directory, need_bytes, what):
    """Raise unless the file system holding ``directory`` has ``need_bytes`` free.

    Parameters
    ----------
    directory : path-like
    need_bytes : int
        An estimate of what the job will write.
    what : str
        What will be written, to name it in the error.

    Raises
    ------
    OSError
        With ``errno.ENOSPC``, when there is less free space than needed.
    """
    free = shutil.disk_usage(directory).free
    if free < need_bytes:
        raise OSError(errno.ENOSPC,
                      f"not enough disk space for {what}: it needs about "
                      f"{_megabytes(need_bytes)} and {directory} has {_megabytes(free)} free",
                      os.fspath(directory))


def _megabytes(n_bytes):
    return f"{n_bytes / 1e6:,.1f} MB"

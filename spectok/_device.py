"""Where the networks run: the device a user names, and the precision used there."""

from contextlib import nullcontext

import torch

from . import conf

__all__ = ["resolve_device", "autocast"]


def resolve_device(device=None):
    """Turn ``"auto"`` (or `None`: ``conf.device``) into a `torch.device`.

    Parameters
    ----------
    device : str, `torch.device` or None
        ``"auto"`` (a GPU when there is one, else the CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``, ...; `None` means ``spectok.conf.device``.

    Returns
    -------
    `torch.device`

    Raises
    ------
    ValueError
        ``device`` is not a device torch knows, or a GPU that this machine
        does not have.

    Examples
    --------
    >>> from spectok.encode import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    device = conf.device if device is None else device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or another torch device such as "
                         f"'cuda:1', got {device!r}") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            raise ValueError(f"device {device!r}: torch sees {count} CUDA GPU(s) here; use "
                             "'cpu', or 'auto' to take a GPU when there is one")
    return resolved


def autocast(device):
    """bfloat16 autocast on a GPU (where it is fast and safe for these networks), else nothing."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()

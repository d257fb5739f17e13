"""Training losses: Gaussian reconstruction, hidden patches, consistency between views, anchor."""

import torch
import torch.nn.functional as F

__all__ = ["gaussian_nll", "chi2_and_scatter_nll", "RECONSTRUCTION_LOSSES", "reduced_chi2",
           "hide_patches", "consistency_loss", "anchor_loss"]


def _per_spectrum_mean(values, weight):
    return (values * weight).sum(-1) / weight.sum(-1).clamp(min=1)


def gaussian_nll(mean, log_scatter, flux, sigma, valid, noise_floor=0.0):
    """Gaussian negative log-likelihood of the data given the decoder's prediction.

    Per pixel, with total variance ``v = σ² + floor² + s²`` (data error, a
    noise floor, and the model's predicted scatter ``s``)::

        (y − ŷ)² / v + ln(v / (σ² + floor²))

    which is the paper's χ² term when ``s = 0`` and otherwise lets the
    decoder say where it cannot reproduce the data. Averaged over the valid
    pixels of each spectrum, then over spectra (so that a data-parallel run
    on equal local batches gives the same gradient as one process).

    Parameters
    ----------
    mean, log_scatter : `~torch.Tensor`, (batch, pixels)
        Decoder output in normalised flux units.
    flux, sigma : `~torch.Tensor`, (batch, pixels)
        Normalised data and 1σ errors.
    valid : `~torch.Tensor` of bool, (batch, pixels)
    noise_floor : float
        Added in quadrature to ``sigma`` (normalised units), so that nearly
        noiseless models do not dominate the loss.

    Returns
    -------
    `~torch.Tensor`
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from spectok.training import gaussian_nll
    >>> y = torch.ones(1, 4); s = torch.full((1, 4), 0.1)
    >>> round(float(gaussian_nll(y + 0.1, torch.full((1, 4), -30.0), y, s, y.bool())), 5)
    1.0
    """
    data_var = sigma.float() ** 2 + noise_floor ** 2
    total_var = data_var + torch.exp(2 * log_scatter.float())
    per_pixel = (flux - mean.float()) ** 2 / total_var + torch.log(total_var / data_var)
    return _per_spectrum_mean(per_pixel, valid.float()).mean()


def chi2_and_scatter_nll(mean, log_scatter, flux, sigma, valid, noise_floor=0.0):
    """χ² of the mean, plus the Gaussian likelihood of the scatter given that mean.

    The mean is trained on ``(y − ŷ)² / (σ² + floor²)`` alone, so every pixel
    pulls on it with the weight of its error, and the scatter ``s`` on
    `gaussian_nll` with the mean held fixed (its gradient stopped), so that
    ``s`` still says where the model cannot reproduce the data. In
    `gaussian_nll` both are trained together and the model can instead widen
    ``s`` where it fails, which weakens the pull of exactly those pixels on
    the mean: the reconstruction χ² then stays high where the spectrum has
    the most structure (strong lines). The loss is then about ten times the
    likelihood's for the same model (a training batch's χ² against its
    ln-variance terms), hence ``reconstruction_weight = 0.1`` in a
    configuration that keeps the balance with the consistency term.

    Parameters
    ----------
    mean, log_scatter : `~torch.Tensor`, (batch, pixels)
        Decoder output in normalised flux units.
    flux, sigma : `~torch.Tensor`, (batch, pixels)
        Normalised data and 1σ errors.
    valid : `~torch.Tensor` of bool, (batch, pixels)
    noise_floor : float
        Added in quadrature to ``sigma`` (normalised units).

    Returns
    -------
    `~torch.Tensor`
        Scalar loss: the mean χ² per valid pixel (averaged per spectrum,
        then over spectra) plus `gaussian_nll` of the detached mean.

    Examples
    --------
    >>> import torch
    >>> from spectok.training import chi2_and_scatter_nll
    >>> y = torch.ones(1, 4); s = torch.full((1, 4), 0.1)
    >>> round(float(chi2_and_scatter_nll(y + 0.1, torch.full((1, 4), -30.0), y, s, y.bool())), 5)
    2.0
    """
    return (reduced_chi2(mean, flux, sigma, valid, noise_floor).mean()
            + gaussian_nll(mean.detach(), log_scatter, flux, sigma, valid, noise_floor))


#: The reconstruction terms a `~spectok.training.TrainingConfig` can name.
RECONSTRUCTION_LOSSES = {"gaussian_nll": gaussian_nll, "chi2": chi2_and_scatter_nll}


def reduced_chi2(mean, flux, sigma, valid, noise_floor=0.0):
    """Reduced χ² of a reconstruction against the data errors, per spectrum.

    Parameters
    ----------
    mean, flux, sigma : `~torch.Tensor`, (batch, pixels)
        Reconstruction, data and 1σ errors, in the same (normalised) units.
    valid : `~torch.Tensor` of bool, (batch, pixels)
    noise_floor : float
        Added in quadrature to ``sigma``; 0 (default): the data errors alone.

    Returns
    -------
    `~torch.Tensor`, (batch,)
        Mean of ``(y − ŷ)² / σ²`` over each spectrum's valid pixels.

    Examples
    --------
    >>> import torch
    >>> from spectok.training import reduced_chi2
    >>> y = torch.ones(1, 4)
    >>> reduced_chi2(y + 0.2, y, torch.full((1, 4), 0.1), y.bool())
    tensor([4.0000])
    >>> reduced_chi2(y + 0.2, y, torch.full((1, 4), 0.1), y.bool(), noise_floor=0.1)
    tensor([2.0000])
    """
    variance = sigma.float() ** 2 + noise_floor ** 2
    return _per_spectrum_mean((flux - mean.float()) ** 2 / variance, valid.float())


def hide_patches(active, fraction, generator=None):
    """Choose patches to hide from the encoder (masked-patch modelling).

    Each active patch is hidden with probability ``fraction``, but every
    spectrum keeps at least one visible active patch.

    Parameters
    ----------
    active : `~torch.Tensor` of bool, (batch, patches)
        Patches that would take part in attention.
    fraction : float
        Probability of hiding a patch, in [0, 1).
    generator : `torch.Generator`, optional
        For reproducible draws.

    Returns
    -------
    `~torch.Tensor` of bool, (batch, patches)

    Examples
    --------
    >>> import torch
    >>> from spectok.training import hide_patches
    >>> hide = hide_patches(torch.ones(2, 10, dtype=torch.bool), 0.99)
    >>> bool((~hide).any(-1).all())
    True
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"the hidden fraction must be in [0, 1), got {fraction}")
    draw = torch.rand(active.shape, generator=generator)
    hide = (draw < fraction) & active
    keep = torch.where(active, draw, torch.full_like(draw, -1.0)).argmax(-1)
    hide[torch.arange(len(hide)), keep] = False
    return hide


def consistency_loss(embedding_a, embedding_b, temperature=0.1):
    """Symmetric InfoNCE between two views of the same objects.

    Row ``i`` of ``embedding_a`` and of ``embedding_b`` are one object seen
    through two instruments; every other row is a negative. A contrastive
    term is chosen over a non-contrastive one because the quantity users care
    about is retrieval (is the twin the nearest neighbour?), which InfoNCE
    optimises directly, and its negatives prevent collapse without extra
    variance terms. Under `torch.distributed`, embeddings are gathered from
    all ranks so that the negatives and the gradient are those of the global
    batch: a run on N processes matches one process with the same global batch.

    Parameters
    ----------
    embedding_a, embedding_b : `~torch.Tensor`, (batch, width)
    temperature : float

    Returns
    -------
    `~torch.Tensor`
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from spectok.training import consistency_loss
    >>> e = torch.eye(4)
    >>> float(consistency_loss(e, e)) < float(consistency_loss(e, e.roll(1, 0)))
    True
    """
    a = F.normalize(embedding_a.float(), dim=-1)
    b = F.normalize(embedding_b.float(), dim=-1)
    world = _world_size()
    if world > 1:
        a, b = _gather_keeping_local_gradient(a), _gather_keeping_local_gradient(b)
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    # Each rank back-propagates only through its own rows, and DDP averages the
    # gradients over ranks: scale the gradient (not the value) by the world size.
    return loss * world - loss.detach() * (world - 1)


def anchor_loss(embedding_a, embedding_b, reference_a, reference_b, n_valid_a, n_valid_b):
    """How far the sharper view of each object has moved from its reference embedding.

    Of each pair of views, the one with more valid pixels is the sharper:
    its embedding is held near where a reference model (the one training
    started from) put it, while the consistency term draws the poorer view
    to it. Held alone, the consistency term would move both views to a place
    that forgets what only the sharper one shows (for stars seen as SDSS-like
    and as Gaia XP-like, the metallicity).

    Parameters
    ----------
    embedding_a, embedding_b : `~torch.Tensor`, (batch, width)
        The embeddings being trained, of the two views of each object.
    reference_a, reference_b : `~torch.Tensor`, (batch, width)
        The reference model's embeddings of the same views.
    n_valid_a, n_valid_b : `~torch.Tensor`, (batch,)
        Number of valid pixels (those the encoder may use) of each view.

    Returns
    -------
    `~torch.Tensor`
        Scalar: the mean over objects of ‖e − r‖² / ‖r‖² for the sharper view
        (view ``a`` where the two have as many valid pixels).

    Examples
    --------
    >>> import torch
    >>> from spectok.training import anchor_loss
    >>> r = torch.ones(2, 4)
    >>> float(anchor_loss(r, 0 * r, r, r, torch.tensor([9, 9]), torch.tensor([5, 5])))
    0.0
    >>> float(anchor_loss(r, 0 * r, r, r, torch.tensor([5, 5]), torch.tensor([9, 9])))
    1.0
    """
    sharper_a = (n_valid_a >= n_valid_b).unsqueeze(-1)
    embedding = torch.where(sharper_a, embedding_a, embedding_b).float()
    reference = torch.where(sharper_a, reference_a, reference_b).float()
    distance = (embedding - reference).pow(2).sum(-1)
    return (distance / reference.pow(2).sum(-1).clamp(min=1e-12)).mean()


def _world_size():
    distributed = torch.distributed
    return distributed.get_world_size() if (distributed.is_available()
                                            and distributed.is_initialized()) else 1


def _gather_keeping_local_gradient(x):
    """All ranks' rows in rank order; only this rank's rows carry a gradient.

    The collective runs in the forward pass only, so it cannot interleave with
    the gradient all-reduce that DDP runs during the backward pass.
    """
    distributed = torch.distributed
    parts = [torch.empty_like(x) for _ in range(distributed.get_world_size())]
    distributed.all_gather(parts, x.detach().contiguous())
    parts[distributed.get_rank()] = x
    return torch.cat(parts)

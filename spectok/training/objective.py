"""The pretraining loss of a model on a pair of views, as one `torch.nn.Module`.

`TrainingObjective` weighs the loss terms of `spectok.training.losses`
for a model and a configuration, and keeps the frozen references that the
anchor and the sources held to ``init_weights`` are measured against.
"""

import copy

import torch
from torch import nn

from .config import _held_sources
from .losses import (RECONSTRUCTION_LOSSES, anchor_loss, consistency_loss, gaussian_nll,
                         reduced_chi2)

__all__ = ["TrainingObjective"]


class TrainingObjective(nn.Module):
    """The full pretraining loss of a tokenizer on a pair of views.

    Wrapping the loss in a module lets `~torch.nn.parallel.DistributedDataParallel`
    see one forward call per step for both views.

    Parameters
    ----------
    model : `~spectok.model.SpectralTokenizer`
    config : `~spectok.training.TrainingConfig`
    reference_pooling : `torch.nn.Module`, optional
        With ``config.anchor_weight``: the pooling of the ``init_weights``
        model, which the anchor holds the sharper views to (the states it
        pools are the frozen encoder's, as those of ``init_weights`` are).
        Default: a frozen copy of ``model.pooling`` as it is now.
    reference_model : `~spectok.model.SpectralTokenizer`, optional
        With sources whose ``reconstruction_target`` is ``"init_weights"``:
        the ``init_weights`` model, whose reconstructions of their views the
        decoder is held to. Default: a frozen copy of ``model`` as it is now.
        Where ``config.trainable`` freezes the encoder and the two models'
        encoders are equal, only the reference's decoder runs on a held
        batch: it decodes the tokens the model under training made.

    Examples
    --------
    The loss of the ``tiny`` model on one batch of a toy source (spectra
    seen twice as published), and its gradient:

    >>> import astropy.units as u
    >>> import numpy as np
    >>> import torch
    >>> from astropy.nddata import StdDevUncertainty
    >>> from specutils import Spectrum
    >>> from spectok.model import SpectralTokenizer
    >>> from spectok.training import Source, TrainingConfig, TrainingObjective, TrainingStream
    >>> def draw(rng, redshift):
    ...     wave = np.geomspace(4000, 7000, 512) * u.AA
    ...     flux = (1 + 0.3 * np.sin(wave.value / rng.uniform(20, 60))) * u.Jy
    ...     return Spectrum(spectral_axis=wave, flux=flux,
    ...                     uncertainty=StdDevUncertainty(0.02 * flux))
    >>> config = TrainingConfig(model="tiny", batch_size=4)
    >>> views = TrainingStream([Source("toy", draw, instruments=("native",))], config,
    ...                        patch_size=32).batch(0)
    >>> _ = torch.manual_seed(0)
    >>> model = SpectralTokenizer(config.tokenizer_config())
    >>> loss, terms = TrainingObjective(model, config)(*views)
    >>> loss.shape, sorted(terms)
    (torch.Size([]), ['consistency', 'reconstruction'])
    >>> weighted = (config.reconstruction_weight * terms["reconstruction"]
    ...             + config.consistency_weight * terms["consistency"])
    >>> bool(torch.isclose(loss.detach(), weighted))
    True
    >>> loss.backward()
    >>> model.to_token.weight.grad.shape
    torch.Size([8, 32])
    """

    def __init__(self, model, config, reference_pooling=None, reference_model=None):
        super().__init__()
        self.model = model
        self.config = config
        self.reference_pooling = None
        if config.anchor_weight:
            reference = model.pooling if reference_pooling is None else reference_pooling
            self.reference_pooling = copy.deepcopy(reference).requires_grad_(False)
        self.reference_model = None
        if _held_sources(config.sources):
            reference = model if reference_model is None else reference_model
            self.reference_model = copy.deepcopy(reference).requires_grad_(False)
        # a frozen encoder that equals the reference's makes the tokens the reference would
        self._reference_decodes_tokens = (
            self.reference_model is not None and config.trainable != "all"
            and all(torch.equal(a, b) for a, b in zip(model.encoder_parameters(),
                                                     self.reference_model.encoder_parameters())))

    def _view(self, view):
        log_wave, flux, sigma, valid, observed, spacing = view["inputs"]
        if not (self.config.reconstruction_weight or self.config.readout_weight):
            # nothing to reconstruct: the consistency term needs the embedding alone
            encoded = self.model.encode(log_wave, flux, sigma, valid, observed, spacing,
                                        hide=view["hide"])
            return flux.new_zeros(()), encoded
        query = view["query"]

        def pick(t):
            return t.gather(1, query)

        arguments = (log_wave, flux, sigma, valid, observed, spacing)
        queries = dict(hide=view["hide"], query_log_wavelength=pick(log_wave),
                       query_spacing=pick(spacing), return_readout=True)
        encoded, mean, log_scatter, readout = self.model(*arguments, **queries)
        query_flux, query_sigma = pick(flux), pick(sigma)
        query_valid = pick(valid) & view["query_valid"]
        floor = self.config.noise_floor
        if view.get("reconstruct_init_weights", False):
            if self.reference_model is None:
                raise ValueError("a batch asks for the reconstruction of init_weights, but the "
                                 "configuration names no source with reconstruction_target = "
                                 "'init_weights', so the objective keeps no such model")
            with torch.no_grad():
                held_flux, held_readout = self._reference_reconstruction(encoded, arguments,
                                                                         queries)
            # the flux and the readout are held to the reference's; the scatter still learns
            # from the data
            chi2_weight = self.config.hold_weight
            readout_target = held_readout.float()
            nll = (chi2_weight * reduced_chi2(mean, held_flux.float(), query_sigma, query_valid,
                                              floor).mean()
                   + gaussian_nll(mean.detach(), log_scatter, query_flux, query_sigma,
                                  query_valid, floor))
        else:
            chi2_weight, readout_target = 1.0, query_flux
            reconstruction_loss = RECONSTRUCTION_LOSSES[self.config.reconstruction_loss]
            nll = reconstruction_loss(mean, log_scatter, query_flux, query_sigma, query_valid,
                                      floor)
        if self.config.readout_weight:
            nll = nll + chi2_weight * self.config.readout_weight * reduced_chi2(
                readout, readout_target, query_sigma, query_valid, floor).mean()
        return nll, encoded

    def _reference_reconstruction(self, encoded, arguments, queries):
        """The reference model's flux and readout at the queried pixels of a held batch."""
        if self._reference_decodes_tokens:
            held_flux, _, held_readout = self.reference_model.decode(
                encoded["tokens"], encoded["centre"], encoded["log_spacing"], encoded["active"],
                queries["query_log_wavelength"], queries["query_spacing"], encoded["n_pixels"],
                return_readout=True)
            return held_flux, held_readout
        _, held_flux, _, held_readout = self.reference_model(*arguments, **queries)
        return held_flux, held_readout

    def _anchor(self, view_a, encoded_a, view_b, encoded_b):
        with torch.no_grad():
            reference_a, reference_b = (self.reference_pooling(e["states"], e["active"])
                                        for e in (encoded_a, encoded_b))
        n_valid_a, n_valid_b = (valid.sum(-1) for _, _, _, valid, _, _ in
                                (view_a["inputs"], view_b["inputs"]))
        return anchor_loss(encoded_a["embedding"], encoded_b["embedding"],
                           reference_a, reference_b, n_valid_a, n_valid_b)

    def forward(self, view_a, view_b):
        """The total loss and the terms it weighs.

        Parameters
        ----------
        view_a, view_b : dict
            The two views of each object of a batch, as `TrainingStream`
            makes them (on the model's device).

        Returns
        -------
        loss : `torch.Tensor`
            ``reconstruction_weight`` × reconstruction + ``consistency_weight``
            × consistency (+ ``anchor_weight`` × anchor): a scalar, with gradient.
        terms : dict of str to `torch.Tensor`
            Detached: ``reconstruction`` (the loss per pixel of the decoded
            flux, plus ``readout_weight`` × the readout's own χ²; 0 when
            neither is weighted, as nothing is then decoded; for a batch
            held to ``init_weights``, ``hold_weight`` × the χ² of flux and
            readout against that model's plus the scatter's likelihood),
            ``consistency``, and ``anchor`` when ``anchor_weight`` is not 0.
        """
        nll_a, encoded_a = self._view(view_a)
        nll_b, encoded_b = self._view(view_b)
        reconstruction = 0.5 * (nll_a + nll_b)
        consistency = consistency_loss(encoded_a["embedding"], encoded_b["embedding"],
                                       self.config.temperature)
        loss = (self.config.reconstruction_weight * reconstruction
                + self.config.consistency_weight * consistency)
        terms = {"reconstruction": reconstruction.detach(), "consistency": consistency.detach()}
        if self.config.anchor_weight:
            anchor = self._anchor(view_a, encoded_a, view_b, encoded_b)
            loss = loss + self.config.anchor_weight * anchor
            terms["anchor"] = anchor.detach()
        return loss, terms

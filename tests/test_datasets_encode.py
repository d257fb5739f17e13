"""Every spectrum every loader returns goes through `spectok.encode` without error."""

import numpy as np
import pytest

import spectok
from spectok import datasets

LOADERS = [datasets.load_miles, datasets.load_spex, datasets.load_stellar_templates,
           datasets.load_model_atmospheres, datasets.load_ssp_templates,
           datasets.load_desi_examples, datasets.load_manga_examples]


@pytest.mark.remote_data
@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_every_loaded_spectrum_encodes(loader, tiny_model, recwarn):
    dataset = loader()
    spectra = dataset.spectra
    if "usable" in dataset.labels.colnames:  # MaNGA: one spaxel is masked at every pixel
        spectra = [s for s, ok in zip(spectra, dataset.labels["usable"]) if ok]
    result = spectok.encode(spectra, model=tiny_model, batch_size=256, errors="raise",
                            progress=False)
    assert len(result) == len(spectra)
    assert np.all(np.isfinite(result.embedding))
    # Spectra published without errors get one NoUncertaintyWarning per call, nothing else.
    assert all(issubclass(w.category, spectok.adapter.NoUncertaintyWarning) for w in recwarn)

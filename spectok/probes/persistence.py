"""Saving and loading probes without pickle: safetensors arrays + a JSON description.

A probe file is one safetensors file. Its arrays hold every numeric array
of the probe and of the estimators inside it; its header metadata holds a
JSON tree describing the objects: for each estimator, the public name of
its class, its constructor parameters and its fitted attributes, with
arrays referred to by key. Loading reads that JSON, checks every class
against a fixed list of trusted types, builds each object with its
constructor and sets its attributes. Nothing in the file is ever executed
or unpickled: a pickle, or a description naming any other type, is refused
with a `ProbeFileError`.
"""

import json
import warnings
from pathlib import Path

import numpy as np

from .._atomic import write_atomically
from .._preflight import check_writable_directory

__all__ = ["save_probe", "load_probe", "trusted_types", "ProbeFileError",
           "ProbeVersionWarning"]

_FORMAT = "spectok-probe"
_FORMAT_VERSION = 1

#: Attributes that fitted estimators carry but prediction never needs, and
#: that are not plain data (a random generator, an optimizer's state).
_SKIPPED_ATTRIBUTES = {"_random_state", "_optimizer"}


class ProbeFileError(ValueError):
    """A file that is not a probe written by `save_probe`, or holds an untrusted type."""


class ProbeVersionWarning(UserWarning):
    """A probe file was written with another version of scikit-learn or spectok."""


def _trusted_types():
    from sklearn.kernel_approximation import Nystroem
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelBinarizer, StandardScaler

    from .classification import SpectralClassProbe
    from .regression import RedshiftProbe, StellarParameterProbe

    sklearn_types = {
        "sklearn.kernel_approximation": [Nystroem],
        "sklearn.kernel_ridge": [KernelRidge],
        "sklearn.linear_model": [LogisticRegression, RidgeCV],
        "sklearn.neighbors": [KNeighborsClassifier, KNeighborsRegressor],
        "sklearn.neural_network": [MLPClassifier, MLPRegressor],
        "sklearn.pipeline": [Pipeline],
        "sklearn.preprocessing": [LabelBinarizer, StandardScaler],
    }
    types = {f"{module}.{cls.__name__}": cls
             for module, classes in sklearn_types.items() for cls in classes}
    types.update({f"spectok.probes.{cls.__name__}": cls
                  for cls in (RedshiftProbe, StellarParameterProbe, SpectralClassProbe)})
    return types


def trusted_types():
    """The public names of the only types a probe file may hold.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from spectok.probes import trusted_types
    >>> "sklearn.linear_model.RidgeCV" in trusted_types()
    True
    """
    return sorted(_trusted_types())


def _type_name(obj):
    for name, cls in _trusted_types().items():
        if type(obj) is cls:
            return name
    return None


class _Writer:
    def __init__(self):
        self.arrays = {}

    def array(self, value, where):
        value = np.asarray(value)
        if value.dtype.kind in "biuf":
            key = f"a{len(self.arrays)}"
            self.arrays[key] = np.ascontiguousarray(value)
            # scikit-learn keeps some coefficients in Fortran order, and a matrix
            # product's last bits depend on the layout: restore it on loading
            fortran = value.flags.f_contiguous and not value.flags.c_contiguous
            return {"t": "array", "key": key, "order": "F" if fortran else "C"}
        if value.dtype.kind in "UO" and all(isinstance(v, (str, np.str_, int, np.integer,
                                                           float, np.floating, bool))
                                            for v in value.ravel()):
            return {"t": "text_array", "dtype": value.dtype.kind, "shape": list(value.shape),
                    "v": [v.item() if isinstance(v, np.generic) else v for v in value.ravel()]}
        raise TypeError(f"{where}: cannot store an array of dtype {value.dtype}")

    def node(self, value, where):
        if value is None or isinstance(value, (bool, str)):
            return {"t": "py", "v": value}
        if isinstance(value, (int, float)) and not isinstance(value, np.generic):
            return {"t": "py", "v": value}
        if isinstance(value, np.generic):
            return {"t": "scalar", "dtype": value.dtype.str, "v": value.item()}
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, (list, tuple)):
            return {"t": type(value).__name__,
                    "v": [self.node(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"t": "dict",
                        "v": {k: self.node(v, f"{where}.{k}") for k, v in value.items()}}
            if not all(isinstance(k, (str, int, float, np.integer, np.floating))
                       and not isinstance(k, (bool, np.bool_)) for k in value):
                raise TypeError(f"{where}: dict keys must be strings or numbers")
            return {"t": "mapping", "v": [[self.node(k, f"{where} key"),
                                           self.node(v, f"{where}[{k!r}]")]
                                          for k, v in value.items()]}
        name = _type_name(value)
        if name is None:
            raise TypeError(f"{where}: cannot store an object of type "
                            f"{type(value).__module__}.{type(value).__qualname__}; "
                            "probe files hold only trusted estimator types and plain data")
        params = value.get_params(deep=False)
        state = {k: v for k, v in vars(value).items()
                 if k not in params and k not in _SKIPPED_ATTRIBUTES}
        return {"t": "estimator", "class": name,
                "params": self.node(params, f"{where}({name}).params"),
                "state": self.node(state, f"{where}({name}).state")}


class _Reader:
    def __init__(self, arrays, path):
        self.arrays = arrays
        self.path = path
        self.trusted = _trusted_types()

    def fail(self, message):
        raise ProbeFileError(f"{self.path}: {message}")

    def node(self, node):
        if not isinstance(node, dict) or "t" not in node:
            self.fail("malformed description")
        kind = node["t"]
        if kind == "py":
            value = node.get("v")
            if value is not None and not isinstance(value, (bool, int, float, str)):
                self.fail(f"unexpected value {value!r}")
            return value
        if kind == "scalar":
            return np.dtype(self._dtype(node["dtype"])).type(node["v"])
        if kind == "array":
            if node.get("key") not in self.arrays:
                self.fail(f"missing array {node.get('key')!r}")
            if node.get("order", "C") not in ("C", "F"):
                self.fail(f"unexpected array order {node.get('order')!r}")
            return np.array(self.arrays[node["key"]], order=node.get("order", "C"))
        if kind == "text_array":
            if node.get("dtype") not in ("U", "O"):
                self.fail(f"unexpected text array dtype {node.get('dtype')!r}")
            values = node["v"]
            if not all(isinstance(v, (str, int, float, bool)) for v in values):
                self.fail("text arrays hold only strings and numbers")
            array = np.array(values, dtype=object if node["dtype"] == "O" else None)
            return array.reshape(node["shape"])
        if kind in ("list", "tuple"):
            items = [self.node(v) for v in node["v"]]
            return items if kind == "list" else tuple(items)
        if kind == "dict":
            return {str(k): self.node(v) for k, v in node["v"].items()}
        if kind == "mapping":
            pairs = [(self.node(k), self.node(v)) for k, v in node["v"]]
            if not all(isinstance(k, (str, int, float, np.integer, np.floating)) for k, _ in pairs):
                self.fail("mapping keys must be strings or numbers")
            return dict(pairs)
        if kind == "estimator":
            name = node.get("class")
            if name not in self.trusted:
                self.fail(f"refusing to load untrusted type {name!r}; probe files may only "
                          f"hold these types: {', '.join(sorted(self.trusted))}")
            cls = self.trusted[name]
            params = self.node(node["params"])
            state = self.node(node["state"])
            if not isinstance(params, dict) or not isinstance(state, dict):
                self.fail(f"malformed description of {name}")
            try:
                obj = cls(**params)
            except TypeError as error:
                self.fail(f"cannot rebuild {name}: {error}")
            for key, value in state.items():
                if key.startswith("__"):
                    self.fail(f"{name}: refusing to set attribute {key!r}")
                setattr(obj, key, value)
            return obj
        self.fail(f"unknown node type {kind!r}")

    def _dtype(self, text):
        dtype = np.dtype(text)
        if dtype.kind not in "biuf":
            self.fail(f"unexpected scalar dtype {text!r}")
        return dtype


def _versions():
    import sklearn

    from .. import __version__

    return {"sklearn": sklearn.__version__, "spectok": __version__}


def save_probe(probe, path):
    """Write a fitted probe (or scikit-learn head) to a safetensors file.

    Parameters
    ----------
    probe : `RedshiftProbe`, `StellarParameterProbe`, `SpectralClassProbe` or a trusted estimator
        Any object of `trusted_types`, fitted or not.
    path : str or `~pathlib.Path`
        Destination (``.safetensors`` is the natural suffix); written
        atomically.

    Returns
    -------
    `~pathlib.Path`
        The path written.

    Raises
    ------
    TypeError
        If ``probe`` is not an estimator (a list or dict of probes is saved
        as one file each), or holds an object that is not plain data or a
        trusted type.
    FileNotFoundError, NotADirectoryError, PermissionError
        The directory of ``path`` does not exist, is a file, or cannot be
        written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from spectok.probes import RedshiftProbe, load_probe, save_probe
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> probe = RedshiftProbe(head="ridge").fit(X, np.abs(X[:, 0]))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "redshift.safetensors"
    >>> loaded = load_probe(save_probe(probe, path))
    >>> bool(np.allclose(loaded.predict(X), probe.predict(X)))
    True
    """
    from safetensors.numpy import save_file

    path = Path(path)
    check_writable_directory(path.parent, f"cannot write probe file {path}: directory")
    writer = _Writer()
    tree = writer.node(probe, type(probe).__name__)
    if tree.get("t") != "estimator":   # load_probe reads an estimator and nothing else
        raise TypeError(f"save_probe writes one probe or scikit-learn estimator, not a "
                        f"{type(probe).__name__}; save each probe to its own file")
    metadata = {"format": _FORMAT, "format_version": str(_FORMAT_VERSION),
                "versions": json.dumps(_versions()), "probe": json.dumps(tree)}
    write_atomically(path, lambda partial: save_file(writer.arrays, str(partial),
                                                     metadata=metadata))
    return path


def load_probe(path):
    """Read a probe written by `save_probe`, never running code from the file.

    Every object in the file must be of one of `trusted_types`; it is built
    with its constructor from JSON parameters, and its fitted attributes
    (numbers, strings, arrays, lists and dicts of these, and other trusted
    objects) are set on it. Pickles are refused.

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    probe
        The estimator, as saved.

    Raises
    ------
    ProbeFileError
        The file is not a safetensors probe file (for example a pickle), its
        description is malformed or holds no estimator, or it names a type
        that is not trusted.
    FileNotFoundError
        There is no such file.

    Warns
    -----
    ProbeVersionWarning
        The file was written with another scikit-learn version (its
        estimators may then behave differently).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from spectok.probes import SpectralClassProbe, load_probe
    >>> X = np.random.default_rng(0).normal(size=(60, 3))
    >>> probe = SpectralClassProbe().fit(X, X[:, 0] > 0)
    >>> path = probe.save(pathlib.Path(tempfile.mkdtemp()) / "classes.safetensors")
    >>> loaded = load_probe(path)
    >>> type(loaded).__name__, bool(np.array_equal(loaded.predict_proba(X), probe.predict_proba(X)))
    ('SpectralClassProbe', True)
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no probe file {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            arrays = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        # Only now: a safetensors file opens with its header's length, whose
        # first byte is 0x80 -- a pickle's first byte -- for one length in 256.
        with open(path, "rb") as f:
            if f.read(1) == b"\x80":
                raise ProbeFileError(
                    f"{path} looks like a Python pickle and is not a safetensors file "
                    f"({error}); spectok never loads pickles (they can run arbitrary "
                    "code). Save probes with probe.save().") from None
        raise ProbeFileError(f"{path} is not a safetensors probe file ({error}); probes are "
                             "read only from files written by probe.save()") from None
    if metadata.get("format") != _FORMAT:
        raise ProbeFileError(f"{path} is a safetensors file but not a spectok probe "
                             f"(format {metadata.get('format')!r})")
    if metadata.get("format_version") != str(_FORMAT_VERSION):
        raise ProbeFileError(f"{path}: unsupported probe format version "
                             f"{metadata.get('format_version')!r} (expected {_FORMAT_VERSION})")
    try:
        tree = json.loads(metadata["probe"])
        written = json.loads(metadata.get("versions", "{}"))
    except (KeyError, json.JSONDecodeError, RecursionError) as error:
        raise ProbeFileError(f"{path}: unreadable probe description ({error})") from None
    if not isinstance(written, dict):
        raise ProbeFileError(f"{path}: malformed record of versions {written!r}")
    if not isinstance(tree, dict) or tree.get("t") != "estimator":
        raise ProbeFileError(f"{path}: the description does not hold an estimator at its top "
                             f"(it holds {str(tree)[:60]}); probes are read only from files "
                             "written by probe.save()")
    current = _versions()
    if written.get("sklearn") != current["sklearn"]:
        warnings.warn(f"{path} was written with scikit-learn {written.get('sklearn')}, this is "
                      f"{current['sklearn']}; refit the probe if its predictions look wrong",
                      ProbeVersionWarning, stacklevel=2)
    try:
        return _Reader(arrays, path).node(tree)
    except ProbeFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
        raise ProbeFileError(f"{path}: malformed probe description ({type(error).__name__}: "
                             f"{error})") from None

# Sphinx configuration for spectok, on top of sphinx-astropy's defaults.
import datetime
import doctest
import importlib
import inspect
from importlib import metadata

from sphinx_astropy.conf.v2 import *  # noqa: F401,F403

project = "spectok"
author = "The spectok developers"
copyright = f"{datetime.date.today().year}, {author}"
release = metadata.version("spectok")
version = release.split("+")[0]

html_theme_options.update({"github_url": "https://github.com/spectok/spectok"})  # noqa: F405
html_title = f"{project} v{release}"
nitpicky = True
exclude_patterns.append("_inventories")  # noqa: F405

# -- figures: made by the code on the page ------------------------------------
#
# Tutorials and user-guide pages put their code in ``.. plot::`` directives
# in doctest format with ``:context: close-figs``: the build runs it (every
# figure is made by the code shown above it) and pytest runs the same lines
# as doctests (``--doctest-rst``). One PNG per figure keeps the build fast.
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.figsize": (7.0, 4.0), "figure.dpi": 110, "savefig.bbox": "tight",
                 "font.size": 9}
plot_apply_rcparams = False
plot_pre_code = ""
# The doctest flags of pytest-doctestplus, so that the plot directive (which
# converts doctest-format code with the standard library's parser) accepts them.
for _flag in ("FLOAT_CMP", "IGNORE_OUTPUT", "IGNORE_WARNINGS", "REMOTE_DATA", "SHOW_WARNINGS"):
    doctest.register_optionflag(_flag)

# -- intersphinx: real inventories online, generated fallbacks offline --------
#
# Each project lists its real objects.inv first and a fallback generated from
# the installed package by _inventories/make_inventories.py second. Online,
# Sphinx uses the real inventory; offline (CI has no internet but package
# registries) the first location fails, Sphinx logs that at INFO level only
# because a later location worked, and reads the fallback. Either way the
# links point at the projects' online documentation, and `-W` builds pass.
# Regenerate the fallbacks after upgrading a dependency.
_INTERSPHINX_TARGETS = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "matplotlib": "https://matplotlib.org/stable/",
    "astropy": "https://docs.astropy.org/en/stable/",
    "specutils": "https://specutils.readthedocs.io/en/stable/",
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "h5py": "https://docs.h5py.org/en/stable/",
    "pandas": "https://pandas.pydata.org/docs/",
}
# This replaces sphinx-astropy's mapping. Its "pythonloc" entry is kept (a
# local file shipped with sphinx-astropy, so it works offline); its
# "astropy.org" entry (the astropy website, which spectok does not link to
# and which has no offline inventory) is dropped.
intersphinx_mapping = {
    name: (url, (None, f"_inventories/{name}.inv"))
    for name, url in _INTERSPHINX_TARGETS.items()
} | {"pythonloc": intersphinx_mapping["pythonloc"]}  # noqa: F405
# Fail over to the fallback quickly where the network is filtered rather than absent.
intersphinx_timeout = 10

# -- cross-references that Sphinx cannot resolve on its own -------------------

# Type annotations and base classes name an object by the module that defines
# it (``torch.nn.modules.module.Module``), while projects document it where
# users import it from (``torch.nn.Module``). sphinx-automodapi's smart
# resolver strips one module level; this strips as many as it takes, checking
# that the shorter path is the very same object.


def _public_paths(target):
    """Shorter dotted paths under which the object ``target`` is importable, longest first."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:split]))
        except Exception:  # noqa: BLE001 - not a module (yet): try a shorter prefix
            continue
        head = getattr(module, parts[split], None)
        if head is None:
            return []
        paths = []
        for shorter in range(split - 1, 0, -1):
            try:
                parent = importlib.import_module(".".join(parts[:shorter]))
            except Exception:  # noqa: BLE001
                continue
            if getattr(parent, parts[split], None) is head:
                paths.append(".".join(parts[:shorter] + parts[split:]))
        return paths
    return []


def _resolve_by_public_path(app, env, node, contnode):
    from sphinx.ext.intersphinx import missing_reference

    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or target.startswith("spectok") or target.count(".") < 2:
        return None
    for path in _public_paths(target):
        alias = node.deepcopy()
        alias["reftarget"] = path
        resolved = missing_reference(app, env, alias, contnode)
        if resolved is not None:
            return resolved
    return None


# autodoc gives a method without a docstring the docstring of the method it
# overrides. For overrides of third-party methods (``torch.nn.Module.forward``)
# that text refers to its own project's names (":class:`Module`"), which do not
# resolve here; point to the original instead.


def _replace_foreign_inherited_docstrings(app, what, name, obj, options, lines):
    if what != "method" or not lines or not name.startswith("spectok."):
        return
    function = getattr(obj, "__func__", obj)
    if getattr(function, "__doc__", None) is not None:
        return
    owner_path, _, attribute = name.rpartition(".")
    class_name = owner_path.rpartition(".")[2]
    try:
        owner = getattr(importlib.import_module(owner_path.rpartition(".")[0]), class_name)
    except (ImportError, AttributeError):
        return
    for base in inspect.getmro(owner)[1:]:
        if attribute in vars(base) and getattr(vars(base)[attribute], "__doc__", None):
            if not base.__module__.startswith("spectok"):
                original = f"{base.__module__}.{base.__qualname__}.{attribute}"
                original = (_public_paths(original) or [original])[-1]
                lines[:] = [f"Overrides `{original}`.", ""]
            return


# References to objects that are deliberately not documented, each with its
# reason. None are needed at present: fix a reference rather than add one here.
nitpick_ignore = []


def setup(app):
    app.connect("missing-reference", _resolve_by_public_path)
    app.connect("autodoc-process-docstring", _replace_foreign_inherited_docstrings)

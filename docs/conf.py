# Sphinx configuration for spectok, on top of sphinx-astropy's defaults.
import datetime
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

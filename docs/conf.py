"""Sphinx configuration: the API reference from fastbp's numpydoc docstrings.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (needs the
``docs`` extra: ``pip install ".[docs]"``) against an installed or in-place
built fastbp: autodoc imports the package.
"""

import fastbp

project = "fastbp"
author = "the fastbp developers"
copyright = "2025, the fastbp developers"
release = fastbp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
]

root_doc = "index"
exclude_patterns = ["_build", "readme"]
templates_path = []

autodoc_default_options = {"member-order": "bysource"}
# list the documented members only (no autosummary stubs for every attribute)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "alabaster"
html_title = f"fastbp {release}"
html_static_path = []


# ``.. command-help:: train`` inserts the --help text of a command, taken from
# the parser itself so the page cannot drift from the command line.
from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class CommandHelp(SphinxDirective):
    optional_arguments = 1

    def run(self):
        import os

        from fastbp._cli import build_parser

        os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal width
        parser = build_parser()
        target = parser.commands[self.arguments[0]] if self.arguments else parser
        text = target.format_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app):
    app.add_directive("command-help", CommandHelp)

"""Build the optional C accelerator; everything else is configured in pyproject.toml.

The extension is ``optional``: if it cannot be compiled, Squall installs and runs on
its pure-Python path (the specification the C code mirrors).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "squall._speedups",
            sources=["src/squall/_speedups.c"],
            optional=True,
        )
    ]
)

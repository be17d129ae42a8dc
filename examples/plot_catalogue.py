"""The paper's figures from a ddpayne catalogue.

Usage: python examples/plot_catalogue.py CATALOGUE.fits [OUTDIR]
"""
import sys

from ddpayne.pipeline.catalogue import read_catalogue
from ddpayne.plots import make_figures

cat = read_catalogue(sys.argv[1])
for path in make_figures(cat, sys.argv[2] if len(sys.argv) > 2 else "figures"):
    print(path)

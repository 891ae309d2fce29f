"""Torch-free analysis of Section 2 sweeps: Table 2, λ selection, findings, figures.

Everything here reads the files that training runs write (cloudml.rundir) and never imports
torch or Lightning, so ``python analyze.py`` starts in about a second. Entry point:
:func:`cloudml.analysis.report.analyze_sweep`.
"""

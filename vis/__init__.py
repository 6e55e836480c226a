"""Matplotlib figures of the results, one function per figure."""

"""The bottom of recon: shared types, geometry, working sizes, devices and errors.

Everything else in recon imports from here; nothing here imports from the rest of recon.
"""

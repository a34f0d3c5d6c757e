"""napari-bcdi-dl: BCDI scans to 3D strain maps in napari, with deep learning for gaps and high strain.

The package import stays light (no numpy-heavy work, no Qt, no TensorFlow): see ``docs/architecture.md``.
"""

__version__ = "0.1.0"

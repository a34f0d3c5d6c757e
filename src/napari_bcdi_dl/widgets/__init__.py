"""Floor 3: napari dock widgets (Qt/magicgui). Thin: they call core/ and models/ through ``_worker``."""

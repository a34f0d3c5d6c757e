"""Floor 1: numpy/scipy only. No Qt, no napari, no TensorFlow/Keras."""

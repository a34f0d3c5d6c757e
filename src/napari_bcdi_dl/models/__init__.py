"""Floor 2: Keras 3 models, losses, training and inference. Keras is imported lazily via ``_keras``."""

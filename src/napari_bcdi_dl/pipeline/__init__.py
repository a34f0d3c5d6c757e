"""Floor 3: the pipeline as data, run the same way by the CLI (``bcdi-dl run``/``batch``) and the docks.

``config.py`` (the typed, validated YAML configuration), ``scans.py`` (which scans a configuration names),
``runner.py`` (:func:`~.runner.run_scan`: one scan through the steps), ``provenance.py`` (what produced
a result), ``folder.py`` (one scan into one result folder, atomically), ``batch.py`` (many scans on Dask),
``watch.py`` (new scans during a beamtime), ``summary.py`` (``summary.csv``/``.html``), ``reporting.py``
(progress bars and log lines). It calls ``core`` and ``models`` and holds no science of its own; models
are imported inside functions, so nothing here loads TensorFlow until a DL step runs.
"""

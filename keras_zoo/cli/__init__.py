"""Command-line interface: ``keras-zoo`` (list, info, train, benchmark, ...) and the ``train.py`` shim."""

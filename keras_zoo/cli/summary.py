"""``keras-zoo summary``: a model's layer table and parameter counts, and optionally its diagram.

``keras-zoo summary --model deeplabv3plus --preset tiny`` prints Keras' ``model.summary()``;
``--plot model.png`` also draws the graph with ``keras.utils.plot_model``, which needs ``pydot`` and the
Graphviz ``dot`` program. ``--weights`` of a training run rebuilds that run's model from its args.yaml.
"""

from __future__ import annotations

import argparse
import logging
import sys

from keras_zoo.cli.command import run_command
from keras_zoo.cli.inference_model import build_model, model_command_parser

log = logging.getLogger(__name__)

PLOT_INSTALL = "pip install pydot, and install Graphviz (the 'dot' program, e.g. apt install graphviz)"


def build_parser() -> argparse.ArgumentParser:
    parser, g = model_command_parser("summary", "Print a model's layers and parameters; optionally plot it.")
    g.add_argument("--plot", metavar="FILE", help="also write the model diagram (.png, .svg, .pdf, .dot)")
    g.add_argument("--expand-nested", action="store_true", help="draw nested models' layers in the plot")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --plot file")
    return parser


def require_plotting() -> None:
    """ConfigError (with what to install) unless pydot and Graphviz's ``dot`` are there."""
    import importlib.util
    import shutil

    from keras_zoo.errors import ConfigError

    if importlib.util.find_spec("pydot") is None or shutil.which("dot") is None:
        raise ConfigError(f"--plot needs pydot and Graphviz: {PLOT_INSTALL}")


def plot(model, path: str, expand_nested: bool = False) -> None:
    """Writes ``keras.utils.plot_model`` of ``model`` to ``path``, shapes and layer names shown.

    Raises:
        ConfigError: pydot or Graphviz missing (with what to install).
    """
    import keras

    require_plotting()
    # plot_model picks the format from the file's extension, so it writes to `path` itself.
    keras.utils.plot_model(
        model, to_file=path, show_shapes=True, show_layer_names=True, expand_nested=expand_nested
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``keras-zoo summary``; returns 0 or 2 (user error)."""
    return run_command(build_parser().parse_args, _summary, argv)


def _summary(args: argparse.Namespace) -> int:
    if args.plot:  # checked before the model is built and its table printed
        from keras_zoo.inference.common import OutputClaims

        OutputClaims(args.overwrite).claim(args.plot)  # an existing file is kept unless --overwrite
        require_plotting()
    model, _ = build_model(args)
    model.summary(print_fn=lambda line, **kwargs: print(line))
    if args.plot:
        plot(model, args.plot, args.expand_nested)
        print(f"diagram written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

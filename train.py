"""Train a keras_zoo network: ``python train.py --model unet`` (see ``--help``)."""

import sys

from keras_zoo.cli.train import main

if __name__ == "__main__":
    sys.exit(main())

"""Model factories; importing this package registers every network."""

from keras_zoo.models.amoebanet import amoebanet
from keras_zoo.models.cascadenet import cascadenet
from keras_zoo.models.deeplab import deeplabv3plus
from keras_zoo.models.genesis import genesis
from keras_zoo.models.unet import unet

__all__ = ["amoebanet", "cascadenet", "deeplabv3plus", "genesis", "unet"]

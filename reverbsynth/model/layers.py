"""Progressive-GAN layers in keras.ops, so that they run on any Keras backend.

Equalized learning rate: weights are drawn N(0, 1) and scaled at run time by
gain / sqrt(fan_in), so that Adam's per-weight steps are alike for every layer.
"""

import math

import keras
from keras import ops


class EqualizedDense(keras.layers.Layer):
  """Dense [B, in] -> [B, units] with equalized learning rate."""

  def __init__(self, units: int, gain: float = math.sqrt(2), **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.gain = gain

  def build(self, input_shape):
    fan_in = input_shape[-1]
    self.scale = self.gain / math.sqrt(fan_in)
    self.kernel = self.add_weight(shape=(fan_in, self.units),
                                  initializer=keras.initializers.RandomNormal(0.0, 1.0))
    self.bias = self.add_weight(shape=(self.units,), initializer="zeros")

  def call(self, x):
    return ops.matmul(x, self.kernel * self.scale) + self.bias

  def get_config(self):
    return {**super().get_config(), "units": self.units, "gain": self.gain}


class EqualizedConv2D(keras.layers.Layer):
  """'same' 2-D convolution [B, H, W, C] -> [B, H, W, filters] with equalized learning rate."""

  RANK = 2

  def __init__(self, filters: int, kernel_size: int = 3, gain: float = math.sqrt(2), **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.kernel_size = kernel_size
    self.gain = gain

  def build(self, input_shape):
    window, channels = (self.kernel_size,) * self.RANK, input_shape[-1]
    self.scale = self.gain / math.sqrt(math.prod(window) * channels)
    self.kernel = self.add_weight(shape=(*window, channels, self.filters),
                                  initializer=keras.initializers.RandomNormal(0.0, 1.0))
    self.bias = self.add_weight(shape=(self.filters,), initializer="zeros")

  def call(self, x):
    return ops.conv(x, self.kernel * self.scale, padding="same") + self.bias

  def get_config(self):
    return {**super().get_config(), "filters": self.filters,
            "kernel_size": self.kernel_size, "gain": self.gain}


class EqualizedConv1D(EqualizedConv2D):
  """'same' 1-D convolution [B, T, C] -> [B, T, filters] with equalized learning rate."""

  RANK = 1


def pixel_norm(x, epsilon: float = 1e-8):
  """Normalizes each pixel's feature vector [..., C] to unit mean square (in float32)."""
  y = ops.cast(x, "float32")
  y = y * ops.rsqrt(ops.mean(ops.square(y), axis=-1, keepdims=True) + epsilon)
  return ops.cast(y, x.dtype)


def upsample(x, factor: int = 2):
  """Nearest-neighbour (box) upsampling [B, H, W, C] -> [B, fH, fW, C]."""
  return ops.repeat(ops.repeat(x, factor, axis=1), factor, axis=2)


def downsample(x, factor: int = 2):
  """Box (average) downsampling [B, H, W, C] -> [B, H/f, W/f, C]."""
  return ops.average_pool(x, factor, factor, padding="valid")


def minibatch_stddev(x, group_size: int = 4):
  """Appends one feature map: the stddev across a group of samples, averaged [B, H, W, C+1].

  The statistics are taken in float32 (their epsilon underflows in float16).
  """
  shape = ops.shape(x)
  group = math.gcd(x.shape[0], group_size) if x.shape[0] else group_size
  y = ops.reshape(ops.cast(x, "float32"), (group, -1, shape[1], shape[2], shape[3]))
  y = ops.sqrt(ops.var(y, axis=0) + 1e-8)
  y = ops.mean(y, axis=(1, 2, 3), keepdims=True)  # [B/group, 1, 1, 1]
  y = ops.tile(y, (group, shape[1], shape[2], 1))
  return ops.concatenate([x, ops.cast(y, x.dtype)], axis=-1)


def lerp(a, b, t):
  """a + (b - a) * t."""
  return a + (b - a) * t

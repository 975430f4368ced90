"""ResNet-50/101 backbone, Caffe style (stride on the 1x1 conv, conv biases), Matterport names."""
import keras
from keras import layers as KL
from keras import ops


@keras.saving.register_keras_serializable(package="mrcnn")
class BatchNorm(KL.BatchNormalization):
    """BatchNormalization (epsilon 1e-3) whose call takes an explicit `training` flag: Matterport
    passes training=False (config.TRAIN_BN False) to keep the statistics frozen, because batches
    are too small to train them.

    With frozen statistics it computes `(x - mean) * (rsqrt(var + eps) * gamma) + beta`, the
    operation order of TF's CPU FusedBatchNormV3 inference kernel that Keras 2 ran (bit-identical
    to it; checked against tf.raw_ops.FusedBatchNormV3 with TF_ENABLE_ONEDNN_OPTS=0). Keras 3's
    `x * s + (beta - mean * s)` rounds differently and moves the RPN scores by a few ulps."""

    def call(self, inputs, training=None):
        if training and self.trainable:
            return super().call(inputs, training=training)
        # as Keras: float16/bfloat16 inputs are normalized in float32
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        shape = [1] * len(x.shape)
        shape[self.axis[0] if isinstance(self.axis, (list, tuple)) else self.axis] = -1

        def per_channel(v):
            return ops.reshape(ops.cast(v, x.dtype), shape)

        factor = ops.rsqrt(ops.cast(self.moving_variance, x.dtype) + self.epsilon)
        if self.scale:
            factor = factor * ops.cast(self.gamma, x.dtype)
        y = (x - per_channel(self.moving_mean)) * per_channel(factor)
        if self.center:
            y = y + per_channel(self.beta)
        return ops.cast(y, self.compute_dtype)


def _bottleneck_branch(input_tensor, kernel_size, filters, stage, block, strides, use_bias, train_bn):
    """The residual branch 1x1 -> kxk -> 1x1 (Matterport names res<stage><block>_branch2a/2b/2c);
    the stride sits on the first 1x1 conv, as in Matterport's ResNet (Caffe style)."""
    nb_filter1, nb_filter2, nb_filter3 = filters
    conv_name_base = f"res{stage}{block}_branch"
    bn_name_base = f"bn{stage}{block}_branch"
    x = KL.Conv2D(nb_filter1, (1, 1), strides=strides, name=conv_name_base + "2a",
                  use_bias=use_bias)(input_tensor)
    x = BatchNorm(name=bn_name_base + "2a")(x, training=train_bn)
    x = KL.Activation("relu")(x)
    x = KL.Conv2D(nb_filter2, (kernel_size, kernel_size), padding="same",
                  name=conv_name_base + "2b", use_bias=use_bias)(x)
    x = BatchNorm(name=bn_name_base + "2b")(x, training=train_bn)
    x = KL.Activation("relu")(x)
    x = KL.Conv2D(nb_filter3, (1, 1), name=conv_name_base + "2c", use_bias=use_bias)(x)
    return BatchNorm(name=bn_name_base + "2c")(x, training=train_bn)


def identity_block(input_tensor, kernel_size, filters, stage, block, use_bias=True, train_bn=True):
    x = _bottleneck_branch(input_tensor, kernel_size, filters, stage, block, (1, 1), use_bias, train_bn)
    x = KL.Add()([x, input_tensor])
    return KL.Activation("relu", name=f"res{stage}{block}_out")(x)


def conv_block(input_tensor, kernel_size, filters, stage, block, strides=(2, 2), use_bias=True,
               train_bn=True):
    x = _bottleneck_branch(input_tensor, kernel_size, filters, stage, block, strides, use_bias, train_bn)
    shortcut = KL.Conv2D(filters[2], (1, 1), strides=strides, name=f"res{stage}{block}_branch1",
                         use_bias=use_bias)(input_tensor)
    shortcut = BatchNorm(name=f"bn{stage}{block}_branch1")(shortcut, training=train_bn)
    x = KL.Add()([x, shortcut])
    return KL.Activation("relu", name=f"res{stage}{block}_out")(x)


# identity blocks in stage 4 after block 'a' (Matterport: resnet50 5, resnet101 22)
STAGE4_BLOCKS = {"resnet50": 5, "resnet101": 22}


def resnet_graph(input_image, architecture, stage5=False, train_bn=True):
    """Returns [C1, C2, C3, C4, C5] (C5 None when stage5 is False)."""
    if architecture not in STAGE4_BLOCKS:
        raise ValueError(f"BACKBONE must be 'resnet50', 'resnet101' or a callable, got {architecture!r}")
    x = KL.ZeroPadding2D((3, 3))(input_image)
    x = KL.Conv2D(64, (7, 7), strides=(2, 2), name="conv1", use_bias=True)(x)
    x = BatchNorm(name="bn_conv1")(x, training=train_bn)
    x = KL.Activation("relu")(x)
    C1 = x = KL.MaxPooling2D((3, 3), strides=(2, 2), padding="same")(x)
    x = conv_block(x, 3, [64, 64, 256], stage=2, block="a", strides=(1, 1), train_bn=train_bn)
    x = identity_block(x, 3, [64, 64, 256], stage=2, block="b", train_bn=train_bn)
    C2 = x = identity_block(x, 3, [64, 64, 256], stage=2, block="c", train_bn=train_bn)
    x = conv_block(x, 3, [128, 128, 512], stage=3, block="a", train_bn=train_bn)
    x = identity_block(x, 3, [128, 128, 512], stage=3, block="b", train_bn=train_bn)
    x = identity_block(x, 3, [128, 128, 512], stage=3, block="c", train_bn=train_bn)
    C3 = x = identity_block(x, 3, [128, 128, 512], stage=3, block="d", train_bn=train_bn)
    x = conv_block(x, 3, [256, 256, 1024], stage=4, block="a", train_bn=train_bn)
    for i in range(STAGE4_BLOCKS[architecture]):
        x = identity_block(x, 3, [256, 256, 1024], stage=4, block=chr(98 + i), train_bn=train_bn)
    C4 = x
    if stage5:
        x = conv_block(x, 3, [512, 512, 2048], stage=5, block="a", train_bn=train_bn)
        x = identity_block(x, 3, [512, 512, 2048], stage=5, block="b", train_bn=train_bn)
        C5 = identity_block(x, 3, [512, 512, 2048], stage=5, block="c", train_bn=train_bn)
    else:
        C5 = None
    return [C1, C2, C3, C4, C5]

"""Feature Pyramid Network top-down pathway (Matterport names fpn_c*p*, fpn_p*)."""
from keras import layers as KL


def fpn_graph(feature_maps, top_down_pyramid_size):
    """[C2, C3, C4, C5] -> [P2, P3, P4, P5, P6]. P6 = P5 subsampled (1x1 max-pool, stride 2)."""
    C2, C3, C4, C5 = feature_maps
    d = top_down_pyramid_size
    P5 = KL.Conv2D(d, (1, 1), name="fpn_c5p5")(C5)
    P4 = KL.Add(name="fpn_p4add")([KL.UpSampling2D(size=(2, 2), name="fpn_p5upsampled")(P5),
                                   KL.Conv2D(d, (1, 1), name="fpn_c4p4")(C4)])
    P3 = KL.Add(name="fpn_p3add")([KL.UpSampling2D(size=(2, 2), name="fpn_p4upsampled")(P4),
                                   KL.Conv2D(d, (1, 1), name="fpn_c3p3")(C3)])
    P2 = KL.Add(name="fpn_p2add")([KL.UpSampling2D(size=(2, 2), name="fpn_p3upsampled")(P3),
                                   KL.Conv2D(d, (1, 1), name="fpn_c2p2")(C2)])
    P2 = KL.Conv2D(d, (3, 3), padding="SAME", name="fpn_p2")(P2)
    P3 = KL.Conv2D(d, (3, 3), padding="SAME", name="fpn_p3")(P3)
    P4 = KL.Conv2D(d, (3, 3), padding="SAME", name="fpn_p4")(P4)
    P5 = KL.Conv2D(d, (3, 3), padding="SAME", name="fpn_p5")(P5)
    P6 = KL.MaxPooling2D(pool_size=(1, 1), strides=2, name="fpn_p6")(P5)
    return [P2, P3, P4, P5, P6]

"""Cross-checks against independent implementations: tf-keras-vis 0.8.7 and tf-explain 0.3.1.

Both run on Keras 3 here. What each peer returns differs from vizkit in documented ways:

* tf-keras-vis ``Gradcam`` upsamples with ``scipy.ndimage.zoom(order=1)`` (corner-aligned) where
  vizkit uses ``tf.image.resize`` (half-pixel centres), so maps are compared after applying the
  same upsampling to the peer's low-resolution CAM.
* tf-explain ``OcclusionSensitivity.explain`` returns a colour heat-map grid (uint8), so the
  underlying ``get_sensitivity_map`` is compared. It scores ``1 - p(occluded)`` on one value per
  patch and resizes that grid with ``cv2.resize`` (bilinear); vizkit scores
  ``p(x) - p(occluded)`` per pixel, a constant ``1 - p(x)`` apart. Its fill is 127.5, i.e. it
  assumes 0..255 images, and its patch grid is transposed for non-square images, so the check
  uses square 0..255 images.
* tf-explain ``IntegratedGradients`` returns the path-averaged gradient of the probability
  without the ``(x - baseline)`` factor, with equal weights on ``n_steps`` points.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vizkit
from vizkit.attribution import integrated_gradients

# tf-keras-vis calls functional models with a list of one tensor; Keras 3 warns and carries on.
pytestmark = pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")


def peer_model():
    keras.utils.set_random_seed(2)
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Rescaling(1 / 255, name="scale")(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(h)
    h = keras.layers.MaxPooling2D(name="p1")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = keras.layers.Dense(4, activation="softmax", name="out")(h)
    return keras.Model(inp, out, name="peer")


def images(n=3):
    x = np.random.default_rng(0).random((n, 16, 16, 3), dtype=np.float32) * 255
    x[:, 4:8, 8:12] = 255.0  # a bright block to give the maps some structure
    return x


TARGETS = [0, 1, 3]


def correlation(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_vanilla_saliency_matches_tf_keras_vis():
    pytest.importorskip("tf_keras_vis")
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    m, x = peer_model(), images()
    theirs = Saliency(m, model_modifier=ReplaceToLinear(), clone=True)(
        CategoricalScore(TARGETS), x, normalize_map=False
    )
    ours = vizkit.saliency(m, x, TARGETS)
    assert theirs.shape == ours.shape
    for a, b in zip(ours, theirs, strict=True):
        assert correlation(a, b) > 0.99
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-7)


def test_gradcam_matches_tf_keras_vis():
    pytest.importorskip("tf_keras_vis")
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    m, x = peer_model(), images()
    # The predicted class has positive evidence somewhere (other classes' CAMs can be all zero).
    targets = m.predict(x, verbose=0).argmax(axis=1).tolist()
    cam = Gradcam(m, model_modifier=ReplaceToLinear(), clone=True)
    low = cam(CategoricalScore(targets), x, penultimate_layer="c2", expand_cam=False)
    same_upsampling = tf.image.resize(np.asarray(low)[..., None], (16, 16))[..., 0].numpy()
    zoomed = cam(CategoricalScore(targets), x, penultimate_layer="c2")
    ours = vizkit.gradcam(m, x, layer="c2")
    assert np.all(ours.reshape(len(x), -1).max(axis=1) == 1.0)  # exact: x / x == 1
    for mine, up, zoom in zip(ours, same_upsampling, zoomed, strict=True):
        assert correlation(mine, up) > 0.99
        assert correlation(mine, zoom) > 0.95  # even with their own (corner-aligned) zoom


def test_occlusion_matches_tf_explain():
    pytest.importorskip("tf_explain")
    import cv2
    from tf_explain.core.occlusion_sensitivity import OcclusionSensitivity

    m, x = peer_model(), images(2)
    peer = OcclusionSensitivity()
    ours = vizkit.occlusion(m, x, 2, patch=4, fill=127.5)
    probs = m.predict(x, verbose=0)[:, 2]
    for img, mine, p in zip(x, ours, probs, strict=True):
        theirs = peer.get_sensitivity_map(m, img, 2, 4)
        blocks = mine[::4, ::4].astype(np.float64)  # our map is constant on each patch
        # Exact: non-overlapping windows, so each pixel holds a copy of its one window's drop.
        assert np.all(mine == np.kron(blocks, np.ones((4, 4))))
        resized = cv2.resize(blocks, (16, 16))
        assert correlation(resized, theirs) > 0.99
        np.testing.assert_allclose(theirs, resized + (1 - p), atol=1e-5)


def test_integrated_gradients_agree_with_tf_explain_path_average():
    pytest.importorskip("tf_explain")
    from tf_explain.core.integrated_gradients import IntegratedGradients

    m, x = peer_model(), images(2)
    steps = 20
    paths = IntegratedGradients.generate_interpolations(x, steps)
    avg_grad = IntegratedGradients.get_integrated_gradients(paths, m, 1, steps).numpy()
    res = integrated_gradients(m, x, 1, steps=steps, rule="trapezoid", logits=False, warn=False)
    for mine, theirs, img in zip(res.attributions, avg_grad, x, strict=True):
        assert correlation(mine, img * theirs) > 0.99

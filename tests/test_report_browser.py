"""The exported index.html in a real headless Chromium: images load, no errors, no script runs."""

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from vizkit.report import export

pytestmark = pytest.mark.browser

CHROMEDRIVER = "/usr/bin/chromedriver"
EVIL_LAYER = "<img src=x onerror=alert(1)>"
EVIL_MODEL = "<script>alert(1)</script>"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def tiny_model(name, conv2="c2"):
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    h = keras.layers.Conv2D(3, 3, activation="relu", name=conv2)(h)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    return keras.Model(inp, out, name=name)


@pytest.fixture
def driver(tmp_path):
    binary = _chromium()
    if binary is None or not Path(CHROMEDRIVER).exists():
        pytest.skip(f"needs chromium and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


def test_report_renders_offline_with_escaped_names(driver, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    out = tmp_path / "report"
    # TensorFlow cannot trace a layer named with "<", so that model gets the weight-only method.
    export(
        {EVIL_MODEL: tiny_model("evil", EVIL_LAYER)}, images, out, methods=["filters"],
        progress=False, diagnose=False,
    )  # fmt: skip
    index = export(
        {"tiny": tiny_model("tiny")}, images, out, progress=False,
        methods=["filters", "feature_maps", "gradcam", "saliency", "occlusion"],
    )  # fmt: skip
    driver.get(index.as_uri())
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazy images
    driver.execute_script("window.scrollTo(0, 0)")
    imgs = driver.find_elements(By.TAG_NAME, "img")
    assert len(imgs) == 2 + 2 + 2 * 2 + 2 + 2 + 2  # both models' thumbnails
    for img in imgs:
        driver.execute_script("arguments[0].scrollIntoView()", img)
    driver.implicitly_wait(0)
    widths = driver.execute_script(
        "return Promise.all(Array.from(document.images).map(i => i.decode().then("
        "() => i.naturalWidth, () => 0)))"
    )
    assert all(w > 0 for w in widths), widths
    text = driver.find_element(By.TAG_NAME, "body").text
    assert EVIL_LAYER in text and EVIL_MODEL in text  # shown as text, not markup
    assert driver.execute_script("return document.scripts.length") == 0
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018  (no alert(1) ran)
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    driver.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "report_screenshot.png"
    assert driver.save_screenshot(str(shot))
    artifacts = os.environ.get("VIZKIT_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "report_screenshot.png")

"""The exported index.html in a real headless Chromium: images load, no errors, no script runs."""

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from report_helpers import load, report_links, report_pages

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
    # The index shows, per model, the per-image view of the first images (tiny: 2 rows, the
    # input and 5 maps each) and the per-layer figures (filters: 2 per model).
    assert len(imgs) == 2 * (1 + 5) + 2 + 2
    assert _all_images_decode(driver)
    text = driver.find_element(By.TAG_NAME, "body").text
    assert EVIL_LAYER in text and EVIL_MODEL in text  # shown as text, not markup
    assert driver.execute_script("return document.scripts.length") == 0
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018  (no alert(1) ran)
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    # Every page of the report: images decode, links resolve, nothing runs, nothing is fetched.
    for page in report_pages(out)[1:]:
        driver.get((out / page).as_uri())
        assert _all_images_decode(driver), page
        assert driver.execute_script("return document.scripts.length") == 0
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    for page, links in report_links(out).items():
        assert all((out / link).is_file() for link in links), page
    driver.get(index.as_uri())
    shot = tmp_path / "report_screenshot.png"
    assert driver.save_screenshot(str(shot))
    artifacts = os.environ.get("VIZKIT_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "report_screenshot.png")


def _all_images_decode(driver) -> bool:
    driver.execute_script(
        "Array.from(document.images).forEach(i => { i.loading = 'eager'; })"
    )  # lazy images below the fold load too
    widths = driver.execute_script(
        "return Promise.all(Array.from(document.images).map(i => i.decode().then("
        "() => i.naturalWidth, () => 0)))"
    )
    return all(w > 0 for w in widths)


def deep_model(n_layers=60):
    """Many small conv layers: a diagnosis table as long as MobileNetV2's."""
    inp = keras.Input((8, 8, 1))
    h = inp
    for i in range(n_layers):
        h = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name=f"conv{i:02d}")(h)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    return keras.Model(inp, out, name="deep")


def test_figures_come_first_and_each_image_is_one_row(driver, tmp_path):
    """#18: the per-image view puts an image, its prediction and every method's map in one
    row, and the figures start within the first screen even with a 60-layer diagnosis."""
    from selenium.webdriver.common.by import By

    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    out = tmp_path / "report"
    index = export(deep_model(), images, out, methods=["saliency", "gradcam", "occlusion"],
                   progress=False)  # fmt: skip
    driver.set_window_size(1280, 900)
    driver.get(index.as_uri())
    screen = driver.execute_script("return window.innerHeight")
    first = driver.find_element(By.CSS_SELECTOR, "table.images tbody tr")
    maps = first.find_elements(By.TAG_NAME, "img")
    assert len(maps) == 1 + 3  # the input, then saliency, Grad-CAM and occlusion
    assert all(img.rect["y"] + img.rect["height"] <= screen for img in maps)
    # one row: the maps sit side by side, left to right, at the same height
    tops = [img.rect["y"] for img in maps]
    lefts = [img.rect["x"] for img in maps]
    assert max(tops) - min(tops) < 40 and lefts == sorted(lefts)
    headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.images thead th")]
    assert headers[1].startswith("Saliency") and headers[2].startswith("Grad-CAM")
    assert headers[3].startswith("Occlusion")
    facts = first.find_element(By.CSS_SELECTOR, "th .facts").text
    assert "image 000" in facts and "predicted" in facts
    # the diagnosis summary is below the figures, its full table folded away
    table = driver.find_element(By.XPATH, "//summary[starts-with(., 'All ')]/..")
    assert table.get_attribute("open") is None
    assert not driver.find_element(By.XPATH, "//details//td[text()='conv30']").is_displayed()
    manifest = load(out)
    assert len(manifest["diagnosis"]["deep"]["layers"]) >= 60


def test_pages_navigate_with_the_pager(driver, tmp_path):
    from selenium.webdriver.common.by import By

    images = np.random.default_rng(1).random((5, 8, 8, 1)).astype(np.float32)
    out = tmp_path / "report"
    index = export(tiny_model("tiny"), images, out, methods=["saliency"], page_size=2,
                   progress=False, diagnose=False)  # fmt: skip
    driver.get(index.as_uri())
    driver.find_element(By.XPATH, "//table//a[text()='1']").click()  # the group's first page
    seen = []
    while True:
        assert _all_images_decode(driver)
        seen += [i.get_attribute("src").rsplit("/", 1)[-1] for i in
                 driver.find_elements(By.CSS_SELECTOR, "figure img")]  # fmt: skip
        found = driver.find_elements(By.CSS_SELECTOR, "nav.pager a[rel=next]")
        if not found:
            break
        found[0].click()
    assert driver.current_url.endswith("_model__saliency-vanilla-3.html")
    assert sorted(seen) == [f"img{i:03d}_saliency-vanilla.png" for i in range(5)]
    driver.find_element(By.LINK_TEXT, "report").click()
    assert driver.current_url.endswith("index.html")

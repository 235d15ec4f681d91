"""Specification of export/web.py and serving/web: the decoder in a real browser.

Debian's Chromium, driven by Playwright (no browser is downloaded), opens the page that
every export writes, served from 127.0.0.1 by a server these tests start and stop. The
canvases' pixels are compared with onnxruntime-python's decode of the same latents, drawn
by the generator serving/sample.py shares with the page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import threading

import keras
import numpy as np
import onnxruntime as ort
import pytest

from export.pipeline import export_model
from export.web import ORT_WEB_VERSION, RUNTIME_DIR, RUNTIME_INTEGRITY
from keras_vae.config import ModelConfig, TrainConfig
from keras_vae.model.vae import VAE
from serving import sample, vae_decoder, vae_draws
from tests.conftest import strokes

pytestmark = pytest.mark.slow  # a browser process per module: out of the edit-test loop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKUP_NAME = "<img src=x onerror=alert(1)>"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve():
    """serve(directory) → the address of a static server of it on 127.0.0.1; every server
    started is stopped when the module's tests end."""
    servers = []

    def start(directory: str) -> str:
        handler = functools.partial(_QuietHandler, directory=directory)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _browser_setup_missing() -> str | None:
    """What these tests need besides pip's packages, if something is missing: Debian's
    Chromium and the page's runtime from npm (.ci/run installs both)."""
    missing = [need for need, there in (
        ("Debian's chromium (apt-get install chromium)", os.path.exists(CHROMIUM)),
        ("the page's runtime (cd serving/web && npm ci)",
         os.path.isdir(RUNTIME_DIR))) if not there]
    return " and ".join(missing) or None


@pytest.fixture(scope="module")
def browser_setup():
    """Skips the browser tests in one line saying what to install, except under CI
    (CI=true), where a missing piece is a failure: .ci/run installs them."""
    missing = _browser_setup_missing()
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests need {missing}; .ci/run installs them")
    if missing:
        pytest.skip(f"the browser tests need {missing}")


@pytest.fixture(scope="module")
def browser(browser_setup):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def _export(tmp_path_factory, name: str, **model) -> dict:
    """A small model exported; `plain` with its scorer, calibrated at k = 4 on seeded
    bars."""
    from keras_vae.measure.scoring import Scorer, calibrate

    keras.utils.set_random_seed(0)
    vae = VAE(ModelConfig(**{"latent_dim": 4, "hidden_dims": (256,), "likelihood": "bernoulli",
                             "image_shape": (16, 12, 1), **model}))
    export_dir = str(tmp_path_factory.mktemp(name))
    calibration = (calibrate(Scorer(vae, 4), strokes(64, seed=1, size=(16, 12)), fpr=0.1)
                   if name == "plain" else None)  # the score panel's tests use `plain`
    export_model(vae, export_dir, TrainConfig(model=vae.config, dataset="npz:shapes.npz"),
                 calibration=calibration)
    return {"vae": vae, "dir": export_dir, "web": os.path.join(export_dir, "web")}




@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return _export(tmp_path_factory, "plain")


@pytest.fixture(scope="module")
def vamp(tmp_path_factory):
    return _export(tmp_path_factory, "vamp", prior="vamp", pseudo_inputs=7)


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """The default conditional model: a mixture per class, drawn by `component_draw`
    (wider than the others: its class tables are not quantized, and the int8 file must
    stay within 30 % of the fp32 one)."""
    return _export(tmp_path_factory, "conditional", conditional=True, hidden_dims=(384,),
                   label_names=("ring", MARKUP_NAME, "bar"))


def _open(browser, address: str, query: str = "", init_script: str | None = None) -> dict:
    """Opens the page and waits for it to finish or fail: {"page", "status", "state",
    "console" (error messages), "requests" (addresses asked for)}."""
    page = browser.new_page()
    console, requests, dialogs = [], [], []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: console.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    if init_script:
        page.add_init_script(init_script)
    page.goto(f"{address}/index.html{query}")
    page.wait_for_selector("#status[data-state=done], #status[data-state=error]",
                           timeout=60_000)
    return {"page": page, "status": page.inner_text("#status"),
            "state": page.get_attribute("#status", "data-state"), "console": console,
            "requests": requests, "dialogs": dialogs}


def _canvas_pixels(page, selector: str) -> np.ndarray:
    """The first channel of every canvas matched, [N, H, W] uint8."""
    rows = page.evaluate("""(selector) => [...document.querySelectorAll(selector)].map(c =>
        Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)
             .filter((_, i) => i % 4 === 0))""", selector)
    height, width = page.evaluate(f"""[document.querySelector('{selector}').height,
                                       document.querySelector('{selector}').width]""")
    return np.asarray(rows, np.uint8).reshape(len(rows), height, width)


def _reference(onnx_file: str, noise: np.ndarray, labels=None, draws=None,
               temperature: float = 1.0) -> np.ndarray:
    """onnxruntime-python's images for the sampling contract's inputs, as the page rounds
    them to 8 bits."""
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    (image,) = [vae_decoder.decode(session, noise, None if labels is None
                              else np.asarray(labels, np.int64), temperature, draws)]
    return np.round(np.clip(image[..., 0], 0, 1) * 255).astype(np.uint8)


def _assert_within_a_level(drawn: np.ndarray, expected: np.ndarray) -> None:
    assert drawn.shape == expected.shape
    assert np.abs(drawn.astype(int) - expected).max() <= 1  # 1/255


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_page_draws_what_onnxruntime_draws_for_the_same_seed(browser, serve, plain,
                                                                precision):
    opened = _open(browser, serve(plain["web"]),
                   f"?seed=5&n=6&temperature=0.8&precision={precision}")
    assert opened["state"] == "done", opened["status"]
    noise = vae_draws.seeded_noise(6, 4, 5)
    onnx_file = os.path.join(plain["dir"], "decoder.onnx" if precision == "fp32"
                             else "decoder_int8.onnx")
    _assert_within_a_level(_canvas_pixels(opened["page"], "#grid canvas"),
                           _reference(onnx_file, noise, temperature=0.8))
    row = vae_draws.interpolation_noise(10, 4, 3)
    _assert_within_a_level(_canvas_pixels(opened["page"], "#row canvas"),
                           _reference(onnx_file, row, temperature=0.8))
    timing = opened["page"].inner_text("#timing")
    assert "6 images decoded in" in timing and f"({precision}, WebAssembly" in timing
    assert opened["console"] == [] and opened["dialogs"] == []
    assert all(url.startswith("http://127.0.0.1:") for url in opened["requests"])


def test_a_vamp_model_draws_from_its_prior(browser, serve, vamp):
    """The page sends the seed's component draws beside the noise, as the sampler does;
    the decoder picks the VampPrior's components itself."""
    opened = _open(browser, serve(vamp["web"]), "?seed=2&n=5")
    assert opened["state"] == "done", opened["status"]
    draws = vae_draws.component_draws({"component_draw"}, 5, 2)
    _assert_within_a_level(_canvas_pixels(opened["page"], "#grid canvas"),
                           _reference(os.path.join(vamp["dir"], "decoder.onnx"),
                                      vae_draws.seeded_noise(5, 4, 2), draws=draws))
    assert "VampPrior" in opened["page"].inner_text("#model-line")


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_a_hierarchical_decoder_draws_its_levels_from_noise_at_the_temperature(
        browser, serve, tmp_path_factory, prior):
    """A decoder that draws its levels itself takes noise [N, Σ d_l] and the temperature:
    the page sends the seed's noise unscaled and the temperature beside it, and for a
    VampPrior top level the seed's component draws (one per interpolated line), as
    serving/sample.py does."""

    keras.utils.set_random_seed(0)
    vamp = {"prior": "vamp", "pseudo_inputs": 6} if prior == "vamp" else {}
    vae = VAE(ModelConfig(latent_dim=(4, 3), hidden_dims=(256,), likelihood="bernoulli",
                          image_shape=(16, 12, 1), **vamp))
    export_dir = str(tmp_path_factory.mktemp("hierarchy"))
    export_model(vae, export_dir, TrainConfig(model=vae.config, dataset="npz:shapes.npz"))
    opened = _open(browser, serve(os.path.join(export_dir, "web")),
                   "?seed=4&n=5&temperature=0.6")
    assert opened["state"] == "done", opened["status"]
    session = ort.InferenceSession(os.path.join(export_dir, "decoder.onnx"),
                                   providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    noise = vae_draws.seeded_noise(5, 7, 4)
    draws = vae_draws.component_draws(inputs, 5, 4)
    assert (draws is not None) == (prior == "vamp")
    expected = vae_decoder.decode(session, noise, temperature=0.6, component_draw=draws)[..., 0]
    _assert_within_a_level(_canvas_pixels(opened["page"], "#grid canvas"),
                           np.round(np.clip(expected, 0, 1) * 255).astype(np.uint8))
    at_one = vae_decoder.decode(session, noise, temperature=1.0, component_draw=draws)[..., 0]
    assert np.abs(at_one - expected).max() > 2 / 255  # the temperature reached the graph
    row = vae_decoder.decode(session, vae_draws.interpolation_noise(10, 7, 3), temperature=0.6,
                        component_draw=vae_draws.component_draws(inputs, 10, 3, one_line=True))
    _assert_within_a_level(_canvas_pixels(opened["page"], "#row canvas"),
                           np.round(np.clip(row[..., 0], 0, 1) * 255).astype(np.uint8))
    described = opened["page"].inner_text("#model-line")
    assert ("VampPrior" in described) == (prior == "vamp")
    assert opened["console"] == []


def test_the_class_picker_draws_the_class_asked_for_as_the_sampler_does(browser, serve,
                                                                        conditional):
    address = serve(conditional["web"])
    onnx_file = os.path.join(conditional["dir"], "decoder.onnx")
    z = vae_draws.seeded_noise(4, 4, 9)
    draws = vae_draws.component_draws({"component_draw"}, 4, 9)  # a mixture per class
    asked = _open(browser, address, "?seed=9&n=4&label=bar")
    _assert_within_a_level(_canvas_pixels(asked["page"], "#grid canvas"),
                           _reference(onnx_file, z, [2] * 4, draws))
    rows = _open(browser, address, "?seed=9&n=4")  # every class, a row each
    every_z, labels = vae_draws.for_every_class(z, 3)
    _assert_within_a_level(_canvas_pixels(rows["page"], "#grid canvas"),
                           _reference(onnx_file, every_z, labels, np.tile(draws, 3)))
    assert "a mixture prior p(z | y) per class" in rows["page"].inner_text("#model-line")
    assert rows["console"] == [] and asked["console"] == []


def test_class_names_show_as_text_and_run_nothing(browser, serve, conditional):
    opened = _open(browser, serve(conditional["web"]), "?n=2")
    page = opened["page"]
    options = page.eval_on_selector_all("#class option", "o => o.map(x => x.textContent)")
    assert MARKUP_NAME in options
    names = page.eval_on_selector_all("#grid .row-name", "p => p.map(x => x.textContent)")
    assert names == ["ring", MARKUP_NAME, "bar"]
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert opened["dialogs"] == [] and opened["console"] == []


def test_a_chosen_sample_gets_sliders_that_move_its_picture(browser, serve, plain):
    page = _open(browser, serve(plain["web"]), "?seed=1&n=3")["page"]
    page.click("#grid canvas >> nth=1")
    page.wait_for_selector("#focus canvas")
    before = _canvas_pixels(page, "#focus canvas")
    _assert_within_a_level(before, _canvas_pixels(page, "#grid canvas")[1:2])
    assert page.evaluate("document.querySelectorAll('#sliders input').length") == 4
    page.eval_on_selector("#sliders input >> nth=0",
                          "s => { s.value = 3.5; s.dispatchEvent(new Event('input')); }")
    page.wait_for_function("document.querySelector('#timing').textContent.startsWith('1 ')")
    z = vae_draws.seeded_noise(3, 4, 1)[1:2].copy()
    z[0, 0] = 3.5
    page.wait_for_timeout(200)
    _assert_within_a_level(_canvas_pixels(page, "#focus canvas"),
                           _reference(os.path.join(plain["dir"], "decoder.onnx"), z))


def _broken_copy(tmp_path, export: dict, damage) -> str:
    web = str(tmp_path / "web")
    shutil.copytree(export["web"], web)
    damage(web)
    return web


def _write(path: str, data: bytes) -> None:
    os.remove(path)  # a hard link to the export's file: replace it, do not write through
    with open(path, "wb") as f:
        f.write(data)


BAD_PAGES = [
    ("missing decoder", lambda web, e: os.remove(os.path.join(web, "decoder.onnx")),
     "decoder.onnx is missing (HTTP 404)"),
    ("corrupt decoder", lambda web, e: _write(os.path.join(web, "decoder.onnx"), b"\0" * 99),
     "decoder.onnx is not a model onnxruntime can load"),
    ("encoder as decoder", lambda web, e: _write(
        os.path.join(web, "decoder.onnx"),
        open(os.path.join(e["dir"], "encoder.onnx"), "rb").read()),
     "decoder.onnx takes image and gives z_"),
    ("missing metadata", lambda web, e: os.remove(os.path.join(web, "model.json")),
     "model.json is missing (HTTP 404)"),
]


@pytest.mark.parametrize("case, damage, message", BAD_PAGES, ids=[c[0] for c in BAD_PAGES])
def test_a_broken_page_says_what_is_wrong_in_one_visible_line(browser, serve, plain,
                                                              tmp_path, case, damage,
                                                              message):
    opened = _open(browser, serve(_broken_copy(tmp_path, plain, lambda w: damage(w, plain))))
    assert opened["state"] == "error" and message in opened["status"]
    assert "\n" not in opened["status"]
    if case == "encoder as decoder":
        assert "it is not a decoder (an encoder?)" in opened["status"]


def test_a_page_exported_before_the_sampling_contract_says_to_export_again(
        browser, serve, plain, tmp_path):
    """A decoder that takes z (exports before the contract) is refused in one line."""
    def swap(web):
        _write(os.path.join(web, "decoder.onnx"),
               open(os.path.join(plain["dir"], "latent_decoder.onnx"), "rb").read())

    opened = _open(browser, serve(_broken_copy(tmp_path, plain, swap)))
    assert opened["state"] == "error" and "\n" not in opened["status"]
    assert ("decoder.onnx was exported by an older keras-vae (it takes z); export again "
            "with python -m export RUN_DIR") in opened["status"]


def test_a_browser_without_webassembly_is_told_so(browser, serve, plain):
    opened = _open(browser, serve(plain["web"]), init_script="delete window.WebAssembly;")
    assert opened["state"] == "error"
    assert opened["status"].startswith("this browser has no WebAssembly")


def test_an_unknown_class_is_refused_naming_the_known_ones(browser, serve, conditional):
    opened = _open(browser, serve(conditional["web"]), "?label=cat")
    assert opened["state"] == "error"
    assert 'label "cat" is not a class of this model; known: 0 ring' in opened["status"]


def test_a_class_name_is_matched_in_any_case_and_a_near_miss_is_named(browser, serve,
                                                                        conditional):
    """As serving/sample.py's --label: 'RING' is ring; 'rinq' is refused with a hint."""
    address = serve(conditional["web"])
    cased = _open(browser, address, "?label=RING&n=2")
    assert cased["state"] == "done", cased["status"]
    assert cased["page"].eval_on_selector("#class", "picker => picker.value") == "0"
    near = _open(browser, address, "?label=rinq")
    assert near["state"] == "error"
    assert near["status"].startswith(
        'label "rinq" is not a class of this model (did you mean "ring"?); known: 0 ring')


def test_the_pinned_runtime_is_the_one_npm_installed(browser_setup):
    """The CDN route loads the same version the export copies, checked by its hash."""
    with open(os.path.join(os.path.dirname(sample.__file__), "web", "package.json")) as f:
        assert json.load(f)["dependencies"]["onnxruntime-web"] == ORT_WEB_VERSION
    with open(os.path.join(RUNTIME_DIR, "ort.wasm.min.js"), "rb") as f:
        digest = base64.b64encode(hashlib.sha384(f.read()).digest()).decode()
    assert RUNTIME_INTEGRITY == f"sha384-{digest}"


@pytest.mark.slow
def test_the_web_benchmark_times_the_page_beside_native_onnxruntime(browser_setup, plain,
                                                                 tmp_path):
    """Real timings of both runtimes at 1 and every thread, by the command in a process of
    its own (Playwright's sync API runs one browser driver per process; speed itself is
    reported by the benchmark, never asserted)."""
    import subprocess
    import sys

    os.makedirs(tmp_path / "run")
    os.symlink(plain["dir"], tmp_path / "run" / "export")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "export.web_bench", str(tmp_path / "run"),
                           "--repeats", "2"], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "run" / "export" / "web" / "web_bench.json") as f:
        result = json.load(f)
    cores = os.cpu_count() or 1
    assert [row["threads"] for row in result["rows"]][::2] == sorted({1, cores})
    for row in result["rows"]:
        assert row["batch1_ms"] > 0 and row["batch64_ms"] > 0
        if row["runtime"].startswith("browser"):
            assert row["isolated"] and row["first_picture_ms"] > 0
    assert done.stdout.count("\n| ") == len(result["rows"]) + 1


def _png(path, pixels: np.ndarray) -> str:
    from PIL import Image

    Image.fromarray(pixels).save(path)
    return str(path)


def test_the_score_panel_gives_the_numbers_of_serving_score(browser, serve, plain, tmp_path):
    """A picture chosen in the page is scored by scorer.onnx in the browser: the same
    score, likelihood and flag as serving/score.py computes for the file; one of another
    size, and a file that is no image, are each one visible line."""
    from serving import score as edge_score

    files = [_png(tmp_path / "blob.png", strokes(1, seed=7, size=(16, 12))[0, ..., 0]),
             _png(tmp_path / "noise.png", np.random.default_rng(0).integers(
                 0, 256, (16, 12), dtype=np.uint8))]
    session, metadata = edge_score.load_scorer(os.path.join(plain["dir"], "scorer.onnx"))
    expected = edge_score.score(session, edge_score.read_all(files, metadata, 10**6))
    page = _open(browser, serve(plain["web"]))["page"]
    assert page.is_visible("#scoring")
    for i, file in enumerate(files):
        page.set_input_files("#score-file", file)
        page.wait_for_selector("#score-line[data-state=done]", timeout=60_000)
        line = page.locator("#score-line")
        assert abs(float(line.get_attribute("data-score")) - expected["score"][i]) < 1e-3
        assert float(line.get_attribute("data-nll")) == pytest.approx(
            expected["neg_log_likelihood"][i], rel=1e-5)
        assert line.get_attribute("data-flagged") == str(bool(expected["flagged"][i])).lower()
        assert page.evaluate("document.querySelectorAll('#score-images canvas').length") == 2
        page.evaluate("document.querySelector('#score-line').dataset.state = 'idle'")
    assert expected["flagged"].tolist() == [False, True]
    for name, data, message in (
            ("big.png", None, "big.png is 20×20; this model scores 12×16 images"),
            ("notes.png", b"not an image at all", "notes.png: not a PNG, JPEG, GIF, BMP")):
        path = (_png(tmp_path / name, np.zeros((20, 20), np.uint8)) if data is None
                else str(tmp_path / name))
        if data is not None:
            (tmp_path / name).write_bytes(data)
        page.set_input_files("#score-file", path)
        page.wait_for_selector("#score-line[data-state=error]", timeout=60_000)
        said = page.inner_text("#score-line")
        assert message in said and "\n" not in said
        page.evaluate("document.querySelector('#score-line').dataset.state = 'idle'")

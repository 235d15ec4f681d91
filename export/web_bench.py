"""`python -m export.web_bench RUN_DIR`: how fast the browser page decodes, beside native
onnxruntime on the same machine.

It serves RUN_DIR/export/web on 127.0.0.1 with the cross-origin isolation headers that
WebAssembly threads need (COOP/COEP; a plain static server gives the page one thread),
opens it in Debian's Chromium through Playwright, and measures, with 1 thread and with
every core: the time from opening the page to its first picture (loading the runtime and
the model included), and the fp32 decoder's latency for 1 image and for a grid of 64
(median of repeated calls after warm-up). The same calls through onnxruntime-python's
CPU provider stand beside them. Prints a table and writes EXPORT/web/web_bench.json.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np

from keras_vae.run.cli import (
    ArgumentParser,
    UsageError,
    load_tensorflow,
    positive_int,
    run_command,
)
from keras_vae.run.layout import EXPORT_DIR
from keras_vae.run.machine import describe_machine

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
BATCHES = (1, 64)

TIME_DECODES = """async ([n, repeats]) => {
  const page = window.kerasVae, dim = page.model.latent_dim;
  const z = seededNoise(n, dim, 11), labels = new Array(n).fill(0);
  const draws = componentDraws(page, n, 11, false);
  for (let i = 0; i < 3; i++) await decode(page, z, labels, draws);
  const times = [];
  for (let i = 0; i < repeats; i++) {
    times.push((await decode(page, z, labels, draws)).milliseconds);
  }
  return times;
}"""


class _IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    """A static server whose pages are cross-origin isolated (SharedArrayBuffer, threads)."""

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args):
        pass


def browser_timings(web_dir: str, threads: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    handler = functools.partial(_IsolatedHandler, directory=web_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html"
                      f"?threads={threads}&n=64")
            page.wait_for_selector("#status[data-state=done], #status[data-state=error]",
                                   timeout=120_000)
            if page.get_attribute("#status", "data-state") == "error":
                raise UsageError(f"the page failed: {page.inner_text('#status')}")
            result = {"first_picture_ms": page.evaluate("window.kerasVae.firstPictureMs"),
                      "threads": page.evaluate("ort.env.wasm.numThreads"),
                      "isolated": page.evaluate("self.crossOriginIsolated")}
            for n in BATCHES:
                result[f"batch{n}_ms"] = float(np.median(
                    page.evaluate(TIME_DECODES, [n, repeats])))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return result


def native_timings(onnx_file: str, model: dict, threads: int, repeats: int) -> dict:
    import onnxruntime as ort

    from export.endpoints import sampling_feed

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    result = {"threads": threads}
    for n in BATCHES:
        names = [i.name for i in session.get_inputs()]
        feeds = sampling_feed(names, n, model["latent_dim"])
        for _ in range(3):
            session.run(["image"], feeds)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(["image"], feeds)
            times.append((time.perf_counter() - start) * 1e3)
        result[f"batch{n}_ms"] = float(np.median(times))
    return result


def benchmark(run_dir: str, repeats: int) -> dict:
    web_dir = os.path.join(run_dir, EXPORT_DIR, "web")
    if not os.path.isfile(os.path.join(web_dir, "model.json")):
        raise UsageError(f"{web_dir} holds no page; export the run with a current "
                         f"`python -m export {run_dir}`")
    if not os.path.exists(CHROMIUM):
        raise UsageError(f"{CHROMIUM} is missing: apt-get install chromium")
    with open(os.path.join(web_dir, "model.json")) as f:
        model = json.load(f)
    cores = os.cpu_count() or 1
    rows = []
    for threads in sorted({1, cores}):
        rows.append({"runtime": "browser (onnxruntime-web, WebAssembly)",
                     **browser_timings(web_dir, threads, repeats)})
        rows.append({"runtime": "native (onnxruntime, CPU)",
                     **native_timings(os.path.join(web_dir, model["decoders"]["fp32"]),
                                      model, threads, repeats)})
    return {"date": time.strftime("%Y-%m-%d"), "machine": describe_machine(),
            "dataset": model["dataset"], "image_shape": model["image_shape"],
            "latent_dim": model["latent_dim"], "repeats": repeats, "rows": rows}


def format_table(result: dict) -> str:
    lines = [f"fp32 decoder of {result['dataset']} ({'×'.join(map(str, result['image_shape']))}"
             f", latent {result['latent_dim']}), {result['machine']}, {result['date']}",
             "| runtime | threads | first picture (ms) | 1 image (ms) | 64 images (ms) |",
             "|---|---|---|---|---|"]
    for row in result["rows"]:
        first = f"{row['first_picture_ms']:.0f}" if "first_picture_ms" in row else "–"
        lines.append(f"| {row['runtime']} | {row['threads']} | {first} | "
                     f"{row['batch1_ms']:.2f} | {row['batch64_ms']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    parser = ArgumentParser(prog="python -m export.web_bench",
                            description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repeats", type=positive_int, default=50,
                        help="timed calls per batch size (default: %(default)s)")
    args = parser.parse_args(argv)
    load_tensorflow(args.debug)  # the machine's description loads it: without its log lines
    result = benchmark(args.run_dir, args.repeats)
    print(format_table(result))
    out = os.path.join(args.run_dir, EXPORT_DIR, "web", "web_bench.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"→ {out}")


if __name__ == "__main__":
    sys.exit(run_command(main, "export.web_bench"))

"""Pictures for the book: image grids, range/null decompositions, and the per-step DDNM viewer.

Everything here takes (B, C, H, W) / (C, H, W) tensors in [-1, 1]. matplotlib (and ipywidgets for
the live viewer) come with the ``book`` extra and are imported only when a function needs them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

Tensor = torch.Tensor


def to_display(x: Tensor, size: int | None = None) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) in [-1, 1] -> (H, W) or (H, W, 3) float array in [0, 1].

    ``size`` enlarges small images (e.g. a low-resolution y) by pixel replication, so they are shown
    at the same scale as the others. Images with a channel count other than 1 or 3 (e.g. CS
    measurements) are shown as their first channel.
    """
    x = x.detach().float().cpu()
    if x.ndim == 4:
        x = x[0]
    if size is not None and x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="nearest")[0]
    x = ((x.clamp(-1, 1) + 1) / 2).numpy()
    if x.shape[0] == 3:
        return x.transpose(1, 2, 0)
    return x[0]


def show_images(images: Sequence[Tensor], titles: Sequence[str] | None = None, ncols: int | None = None,
                scale: float = 1.7, size: int | None = None, signed: Sequence[bool] | None = None,
                suptitle: str | None = None):
    """A row (or grid) of images with titles; returns the matplotlib figure.

    ``signed[i] = True`` shows image i with a diverging colour map centred on 0 (for null-space
    parts, differences, noise), scaled to its own largest magnitude.
    """
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = ncols or n
    nrows = math.ceil(n / ncols)
    size = size or max(int(im.shape[-1]) for im in images)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows + (0.3 if titles else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        im = images[k]
        if signed is not None and signed[k]:
            arr = im.detach().float().cpu()
            arr = arr[0] if arr.ndim == 4 else arr
            arr = torch.nn.functional.interpolate(arr[None], size=(size, size), mode="nearest")[0]
            arr = arr.mean(0).numpy()
            m = float(np.abs(arr).max()) or 1.0
            ax.imshow(arr, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        else:
            d = to_display(im, size)
            ax.imshow(d, cmap="gray" if d.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_decomposition(op, x: Tensor, title: str | None = None):
    """x, y = A x, A^dagger y (= range part), the null part (I - A^dagger A) x, and their sum."""
    y = op.A(x)
    r, nul = op.range_part(x), op.null_part(x)
    size = x.shape[-1]
    y_show = y if y.shape[1] in (1, 3) else op.A_pinv(y)
    return show_images([x, y_show, r, nul, r + nul],
                       ["x", "y = A x", "A†y = A†A x", "(I − A†A) x", "sum = x"],
                       size=size, signed=[False, False, False, True, False], suptitle=title)


# --------------------------------------------------------------------------- the per-step DDNM viewer
PANELS = ("x_t", "x0_t", "range_part", "null_part", "x0_hat")
PANEL_TITLES = {"x_t": "x_t", "x0_t": "x0|t (model)", "range_part": "A†y (range)",
                "null_part": "(I − A†A) x0|t (null)", "x0_hat": "x̂0|t = A†y + null"}


def _rgb(x: Tensor, signed: bool = False) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) uint8; signed images use a red/blue map centred on 0."""
    x = x.detach().float().cpu()
    if signed:
        import matplotlib

        v = x.mean(0).numpy()
        m = float(np.abs(v).max()) or 1.0
        rgba = matplotlib.colormaps["RdBu_r"]((v / m + 1) / 2)
        return (rgba[..., :3] * 255).round().astype(np.uint8)
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, 0)
    return arr[:3].transpose(1, 2, 0)


def trace_frame(step, index: int = 0, zoom: int = 4, gap: int = 4) -> np.ndarray:
    """One step of a trace as an (H, W, 3) uint8 strip: x_t | x0_t | A†y | null part | x0_hat."""
    tiles = []
    for name in PANELS:
        img = _rgb(getattr(step, name)[index], signed=(name == "null_part"))
        img = np.kron(img, np.ones((zoom, zoom, 1), dtype=np.uint8))
        tiles.append(img)
        tiles.append(np.full((img.shape[0], gap, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def _png(arr: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def trace_frames(result, index: int = 0, zoom: int = 4) -> list[bytes]:
    """PNG bytes of every step of ``result.trace`` (computed once; scrubbing only swaps images)."""
    if not result.trace:
        raise ValueError("the result has no trace; run ddnm_plus(..., trace=True).")
    return [_png(trace_frame(s, index, zoom)) for s in result.trace]


def _caption(step) -> str:
    return (f"t = {step.t} → {step.t_prev}   λ_t = {step.lam:.3f}   "
            f"consistency ‖A x̂0|t − y‖/‖y‖ = {step.consistency:.1e}")


def trace_html(result, index: int = 0, zoom: int = 4) -> str:
    """A self-contained HTML viewer (image strip + range slider in plain JavaScript).

    It needs no kernel, so it keeps working in the built HTML book.
    """
    import base64
    import html
    import uuid

    frames = trace_frames(result, index, zoom)
    uid = "ddnm" + uuid.uuid4().hex[:8]
    srcs = ",".join('"data:image/png;base64,' + base64.b64encode(f).decode() + '"' for f in frames)
    caps = ",".join('"' + html.escape(_caption(s)).replace('"', "&quot;") + '"' for s in result.trace)
    titles = "".join(f'<span style="display:inline-block;width:{32 * zoom + 4}px;text-align:center;font-size:12px">'
                     f"{html.escape(PANEL_TITLES[p])}</span>" for p in PANELS)
    n = len(frames)
    return f"""<div id="{uid}" class="ddnm-trace">
<div>{titles}</div>
<img id="{uid}-img" src={srcs.split(',')[0]} style="image-rendering:pixelated;max-width:100%">
<div><input id="{uid}-slider" type="range" min="0" max="{n - 1}" value="0" step="1" style="width:60%">
<span id="{uid}-step">step 1 / {n}</span></div>
<div id="{uid}-cap" style="font-family:monospace;font-size:12px"></div>
<script>
(function() {{
  var srcs = [{srcs}];
  var caps = [{caps}];
  var s = document.getElementById("{uid}-slider");
  function show(i) {{
    document.getElementById("{uid}-img").src = srcs[i];
    document.getElementById("{uid}-step").textContent = "step " + (+i + 1) + " / {n}";
    document.getElementById("{uid}-cap").innerHTML = caps[i];
  }}
  s.addEventListener("input", function() {{ show(s.value); }});
  show(0);
}})();
</script>
</div>"""


def show_trace_static(result, index: int = 0, zoom: int = 4):
    """Display :func:`trace_html` (works in Jupyter and in the built book)."""
    from IPython.display import HTML

    return HTML(trace_html(result, index, zoom))


class TraceExplorer:
    """Live viewer (ipywidgets): scrub the steps of a DDNM / DDNM+ run; change task, sigma_y, seed.

    A run is computed once per (task, sigma_y, seed) and cached; moving the step slider only swaps
    precomputed images, so it is instant.
    """

    def __init__(self, model, sched, x: Tensor, tasks: dict, steps: int = 25, eta: float = 0.85,
                 sigma_y: float = 0.0, seed: int = 0, zoom: int = 4):
        self.model, self.sched, self.x, self.tasks = model, sched, x[:1], tasks
        self.steps, self.eta, self.zoom = steps, eta, zoom
        self._cache: dict = {}
        self.task, self.sigma_y, self.seed = next(iter(tasks)), float(sigma_y), int(seed)

    def run(self, task: str, sigma_y: float, seed: int):
        """The trace for one setting (cached): (result, PNG frames)."""
        from .sampling import ddnm_plus

        key = (task, round(float(sigma_y), 4), int(seed))
        if key not in self._cache:
            op = self.tasks[task]
            g = torch.Generator().manual_seed(1000 + int(seed))
            y = op.A(self.x)
            y = y + sigma_y * torch.randn(y.shape, generator=g)
            res = ddnm_plus(self.model, self.sched, op, y, sigma_y=sigma_y, steps=self.steps, eta=self.eta,
                            seed=seed, trace=True)
            self._cache[key] = (res, trace_frames(res, 0, self.zoom))
        return self._cache[key]

    def widget(self):
        import ipywidgets as w

        res, frames = self.run(self.task, self.sigma_y, self.seed)
        task = w.Dropdown(options=list(self.tasks), value=self.task, description="task")
        sig = w.FloatSlider(value=self.sigma_y, min=0.0, max=0.3, step=0.05, description="σ_y",
                            continuous_update=False)
        seed = w.BoundedIntText(value=self.seed, min=0, max=10_000, description="seed")
        step = w.IntSlider(value=0, min=0, max=len(frames) - 1, description="step")
        titles = w.HTML("".join(f'<span style="display:inline-block;width:{32 * self.zoom + 4}px;'
                                f'text-align:center;font-size:12px">{PANEL_TITLES[p]}</span>' for p in PANELS))
        img = w.Image(value=frames[0], format="png")
        cap = w.HTML()
        state = {"res": res, "frames": frames}

        def show(_=None):
            i = step.value
            img.value = state["frames"][i]
            cap.value = f"<code>{_caption(state['res'].trace[i])}</code>"

        def rerun(_=None):
            cap.value = "<i>computing…</i>"
            state["res"], state["frames"] = self.run(task.value, sig.value, seed.value)
            step.max = len(state["frames"]) - 1
            show()

        step.observe(show, "value")
        for c in (task, sig, seed):
            c.observe(rerun, "value")
        show()
        return w.VBox([w.HBox([task, sig, seed]), step, titles, img, cap])

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

# One picture per quantity in every chapter: images on [-1, 1]; noisy x_t on this wider scale (on
# [-1, 1] its noise would clip to salt and pepper); signed parts: signed_rgb; spreads, errors: colour_map.
NOISY_VRANGE = (-2.5, 2.5)


def to_display(x: Tensor, size: int | None = None, vrange: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) in ``vrange`` (default the images' [-1, 1]) -> (H, W) or (H, W, 3) float
    array in [0, 1]; values outside ``vrange`` are clipped.

    ``size`` enlarges small images (e.g. a low-resolution y) by pixel replication, so they are shown
    at the same scale as the others. Images with a channel count other than 1 or 3 (e.g. CS
    measurements) are shown as their first channel.
    """
    x = x.detach().float().cpu()
    if x.ndim == 4:
        x = x[0]
    if size is not None and x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x[None], size=(size, size), mode="nearest")[0]
    lo, hi = vrange
    x = ((x.clamp(lo, hi) - lo) / (hi - lo)).numpy()
    if x.shape[0] == 3:
        return x.transpose(1, 2, 0)
    return x[0]


def show_images(
    images: Sequence[Tensor],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    scale: float = 1.7,
    size: int | None = None,
    signed: Sequence[bool] | None = None,
    suptitle: str | None = None,
    vrange: tuple[float, float] | Sequence[tuple[float, float]] = (-1.0, 1.0),
):
    """A row (or grid) of images with titles; returns the matplotlib figure.

    Unsigned images share one gray (or colour) scale, ``vrange`` (black to white); widen it for noisy
    images such as x_t, whose values leave [-1, 1] and would be clipped (``NOISY_VRANGE``). A list
    gives each image its own range.

    ``signed[i] = True`` shows image i as a signed image (:func:`signed_rgb`: for null-space parts,
    differences, noise), scaled to its own largest magnitude.
    """
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = ncols or n
    nrows = math.ceil(n / ncols)
    size = size or max(int(im.shape[-1]) for im in images)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(scale * ncols, scale * nrows + (0.3 if titles else 0)), squeeze=False
    )
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        im = images[k]
        if signed is not None and signed[k]:
            arr = im.detach().float().cpu()
            arr = arr[0] if arr.ndim == 4 else arr
            arr = torch.nn.functional.interpolate(arr[None], size=(size, size), mode="nearest")[0]
            ax.imshow(signed_rgb(arr), interpolation="nearest")
        else:
            d = to_display(im, size, vrange if isinstance(vrange[0], (int, float)) else vrange[k])
            ax.imshow(d, cmap="gray" if d.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def signed_rgb(v: Tensor, m: float | None = None) -> np.ndarray:
    """A signed (C, H, W) image -> (H, W, 3) colours in [0, 1], scaled by m (default: its largest
    magnitude; the step viewer passes one m for a whole run, so frames compare).

    One channel: a red/blue map centred on 0 (blue -m, white 0, red +m). Three channels: each channel
    drawn as itself, 0.5 + v / (2 m), so mid-gray means 0 and a colour residual keeps its colour
    (averaging the channels would hide it: colorization's null part x - gray(x) has channel mean 0).
    """
    import matplotlib

    v = v.detach().float().cpu()
    m = m or float(v.abs().max()) or 1.0
    if v.shape[0] == 3:
        return (0.5 + v / (2 * m)).clamp(0, 1).permute(1, 2, 0).numpy()
    return matplotlib.colormaps["RdBu_r"](((v[0] / m).clamp(-1, 1).numpy() + 1) / 2)[..., :3]


def show_decomposition(op, x: Tensor, title: str | None = None):
    """x, y = A x, A^dagger y (= range part), the null part (I - A^dagger A) x (own scale, in its title), the sum."""
    y = op.A(x)
    r, nul = op.range_part(x), op.null_part(x)
    size = x.shape[-1]
    is_image = y.shape[1] in (1, 3)  # compressed sensing's y is m channels of coefficients
    y_show, y_title = (y, "y = A x") if is_image else (op.A_pinv(y), "y (not an image):\nA†y drawn")
    m, share = float(nul.abs().max()), float(nul.norm() / x.norm())  # the null panel's own scale, its size
    return show_images(
        [x, y_show, r, nul, r + nul],
        ["x", y_title, "A†y = A†A x", f"(I − A†A) x: ±{m:.2f}\n{share:.0%} of ‖x‖", "sum = x"],
        size=size,
        signed=[False, False, False, True, False],
        suptitle=title,
    )


# --------------------------------------------------------------------------- the per-step DDNM viewer
PANELS = ("x_t", "x0_t", "A_pinv_y", "null_part", "x0_hat")
#: the optional sixth panel: the per-pixel std of x̂0|t over the K samples of a run (its batch)
SPREAD = "spread"
PANEL_TITLES = {
    "x_t": "x_t",
    "x0_t": "x0|t (model)",
    "A_pinv_y": "A†y (range)",
    "null_part": "(I − A†A) x0|t (null)",
    "x0_hat": "x̂0|t = A†y + null",
    SPREAD: "std over K samples",
}
#: the std that the uncertainty colour map (``colour_map``) shows as its top colour, here and in
#: ``ddnm-edu restore --uncertainty``
UNCERTAINTY_VMAX = 0.5


#: anchors of the uncertainty colour map (inferno-like, perceptually ordered): black -> purple -> red ->
#: orange -> pale yellow, at 0, 1/4, 1/2, 3/4 and 1 of the scale
_COLOURS = torch.tensor([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]) / 255.0


def colour_map(value: Tensor, vmax: float) -> Tensor:
    """(C, H, W) or (H, W) non-negative values -> (3, H, W) colours in [-1, 1] (``write_image``'s scale):
    0 is black, ``vmax`` and above pale yellow. Several channels are averaged first."""
    v = value.float()
    v = v.mean(0) if v.ndim == 3 else v
    u = (v / vmax).clamp(0, 1) * (len(_COLOURS) - 1)
    i = u.floor().long().clamp(max=len(_COLOURS) - 2)
    w = (u - i)[None]
    rgb = _COLOURS[i].permute(2, 0, 1) * (1 - w) + _COLOURS[i + 1].permute(2, 0, 1) * w
    return rgb * 2 - 1


def add_colour_bar(fig, vmax: float = UNCERTAINTY_VMAX, label: str = "std"):
    """A colour bar for :func:`colour_map` (0 black to ``vmax`` pale yellow) beside a figure's panels."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap, Normalize

    cmap = LinearSegmentedColormap.from_list("uncertainty", _COLOURS.numpy())
    sm = ScalarMappable(norm=Normalize(0, vmax), cmap=cmap)
    return fig.colorbar(sm, ax=fig.axes, fraction=0.015, pad=0.01, label=label, extend="max")  # larger: clipped


def _panels(spread: bool) -> tuple[str, ...]:
    return PANELS + (SPREAD,) if spread else PANELS


def _rgb(x: Tensor, signed: bool = False, m: float | None = None, vrange=(-1.0, 1.0)) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) uint8, as :func:`to_display` (on vrange) or :func:`signed_rgb` (scale m) draw it."""
    d = signed_rgb(x, m) if signed else to_display(x, vrange=vrange)
    d = np.repeat(d[..., None], 3, -1) if d.ndim == 2 else d
    return (d * 255).round().astype(np.uint8)


def _title_band(width: int, zoom: int, gap: int, height: int = 18, spread: bool = False) -> np.ndarray:
    """(height, width, 3) white band with each panel's title centred over its panel (DejaVu Sans)."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        from matplotlib import font_manager

        font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), max(9, min(13, 3 * zoom)))
    except Exception:  # noqa: BLE001 - matplotlib or FreeType missing: Pillow's own font
        font = ImageFont.load_default()
    band = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    tile = 32 * zoom
    for k, name in enumerate(_panels(spread)):
        text = PANEL_TITLES[name]
        w = draw.textlength(text, font=font)
        draw.text((k * (tile + gap) + (tile - w) / 2, 2), text, fill=(0, 0, 0), font=font)
    return np.asarray(band)


def trace_frame(
    step,
    index: int = 0,
    zoom: int = 4,
    gap: int = 4,
    titles: bool = False,
    spread: bool = False,
    null_scale: float | None = None,
) -> np.ndarray:
    """One step of a trace as an (H, W, 3) uint8 strip: x_t | x0_t | A†y | null part | x0_hat.

    ``titles=True`` draws each panel's title above it, in the same picture, so that titles and
    panels stay aligned however wide the picture is shown. ``spread=True`` adds the per-pixel std
    of x̂0|t over the run's batch -- K samples of one y (:class:`TraceExplorer` with ``samples=K``) --
    in the colour map of ``colour_map`` (black 0 to pale yellow ``UNCERTAINTY_VMAX``).
    """
    if spread and step.x0_hat.shape[0] < 2:
        raise ValueError("spread=True needs a run of K >= 2 samples of one y (a batch of K).")
    tiles = []
    for name in _panels(spread):
        if name == SPREAD:
            img = _rgb(colour_map(step.x0_hat.std(0), UNCERTAINTY_VMAX))
        else:
            wide = NOISY_VRANGE if name == "x_t" else (-1.0, 1.0)
            img = _rgb(getattr(step, name)[index], signed=(name == "null_part"), m=null_scale, vrange=wide)
        img = np.kron(img, np.ones((zoom, zoom, 1), dtype=np.uint8))
        tiles.append(img)
        tiles.append(np.full((img.shape[0], gap, 3), 255, np.uint8))
    strip = np.concatenate(tiles[:-1], axis=1)
    if titles:
        strip = np.concatenate([_title_band(strip.shape[1], zoom, gap, spread=spread), strip], axis=0)
    return strip


def _png(arr: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def trace_frames(result, index: int = 0, zoom: int = 4, titles: bool = True, spread: bool = False) -> list[bytes]:
    """PNG bytes of every step of ``result.trace`` (computed once; scrubbing only swaps images)."""
    if not result.trace:
        raise ValueError("the result has no trace; run ddnm_plus(..., trace=True).")
    m = null_scale(result, index)
    return [_png(trace_frame(s, index, zoom, titles=titles, spread=spread, null_scale=m)) for s in result.trace]


def null_scale(result, index: int = 0) -> float:
    """The null panel's scale for a whole run: the largest |(I - A^dagger A) x0|t| over its steps, so
    that the panel shows the null part grow or settle (white/gray = 0, full colour = this value)."""
    return max(float(s.null_part[index].abs().max()) for s in result.trace) or 1.0


def _strip_width(zoom: int, spread: bool, gap: int = 4) -> int:
    n = len(_panels(spread))
    return n * 32 * zoom + (n - 1) * gap


def _caption(step, index: int = 0) -> str:
    return (
        f"t = {step.t} → {step.t_next}   λ_t = {step.lam:.3f}   max |null| = "
        f"{float(step.null_part[index].abs().max()):.2f}   consistency ‖A x̂0|t − y‖/‖y‖ = {step.consistency:.1e}"
    )


def _step_label(i: int, n: int) -> str:
    """Steps are numbered 1..n in both viewers."""
    return f"step {i + 1} / {n}"


def trace_html(result, index: int = 0, zoom: int = 4, spread: bool = False) -> str:
    """A self-contained HTML viewer (image strip + range slider in plain JavaScript).

    It needs no kernel and no network, so it keeps working in the built HTML book, offline.
    Without JavaScript it still shows the first step (a valid image) and its caption.
    ``spread=True`` adds the std panel of :func:`trace_frame` (a run of K samples of one y).
    """
    import base64
    import html
    import json
    import uuid

    frames = [
        "data:image/png;base64," + base64.b64encode(f).decode()
        for f in trace_frames(result, index, zoom, spread=spread)
    ]
    caps = [html.escape(_caption(s, index)) for s in result.trace]
    lo, hi, m = *NOISY_VRANGE, null_scale(result, index)
    scale = f"x_t on {lo}..{hi}, the rest on -1..1; null panel: one scale for all steps, full colour = ±{m:.2f}"
    uid = "ddnm" + uuid.uuid4().hex[:8]
    n = len(frames)
    width = _strip_width(zoom, spread)
    alt = "DDNM step viewer: x_t, x0|t, A†y, null part, x̂0|t" + (", std of x̂0|t over K samples" if spread else "")
    return f"""<div id="{uid}" class="ddnm-trace">
<img id="{uid}-img" src="{frames[0]}" alt="{alt}"
 style="image-rendering:pixelated;width:{width}px;max-width:100%;height:auto">
<div><input id="{uid}-slider" type="range" min="1" max="{n}" value="1" step="1" style="width:60%"
 aria-label="step">
<span id="{uid}-step">{_step_label(0, n)}</span></div>
<div id="{uid}-cap" style="font-family:monospace;font-size:12px">{caps[0]}</div>
<div style="font-family:monospace;font-size:12px">{html.escape(scale)}</div>
<script>
(function() {{
  var srcs = {json.dumps(frames)};
  var caps = {json.dumps(caps)};
  var s = document.getElementById("{uid}-slider");
  function show(k) {{
    var i = k - 1;
    document.getElementById("{uid}-img").src = srcs[i];
    document.getElementById("{uid}-step").textContent = "step " + k + " / {n}";
    document.getElementById("{uid}-cap").innerHTML = caps[i];
  }}
  s.addEventListener("input", function() {{ show(+s.value); }});
}})();
</script>
</div>"""


def show_trace_static(result, index: int = 0, zoom: int = 4, spread: bool = False):
    """Display :func:`trace_html` (works in Jupyter and in the built book)."""
    from IPython.display import HTML

    return HTML(trace_html(result, index, zoom, spread))


class TraceExplorer:
    """Live viewer (ipywidgets): scrub the steps of a DDNM / DDNM+ run; change task, sigma_y, seed.

    A run is computed once per (task, sigma_y, seed) and cached; moving the step slider only swaps
    precomputed images, so it is instant. Steps are numbered 1..n, as in :func:`trace_html`.

    ``samples=K`` (K >= 2) runs K samples of the same y at once (sample j from the stream
    ``rng.spawn(seed, "sample", j)``), shows the first, and adds a sixth panel: the per-pixel std of x̂0|t
    over the K samples -- where the samples still disagree at each step.
    """

    def __init__(
        self,
        model,
        sched,
        x: Tensor,
        tasks: dict,
        steps: int = 25,
        eta: float = 0.85,
        sigma_y: float = 0.0,
        seed: int = 0,
        zoom: int = 4,
        samples: int = 1,
    ):
        from .errors import check_int_range

        self.model, self.sched, self.x, self.tasks = model, sched, x[:1], tasks
        self.steps, self.eta, self.zoom = steps, eta, zoom
        self.samples = check_int_range(samples, "samples", 1, 64)
        self._cache: dict = {}
        self.task, self.sigma_y, self.seed = next(iter(tasks)), float(sigma_y), int(seed)

    def run(self, task: str, sigma_y: float, seed: int):
        """The trace for one setting (cached): (result, PNG frames)."""
        from .rng import spawn_many
        from .sampling import SamplerSettings, ddnm_plus

        key = (task, round(float(sigma_y), 4), int(seed))
        if key not in self._cache:
            op = self.tasks[task]
            y = op.measure(self.x, sigma_y, seed=int(seed))  # one measurement
            k = self.samples
            gens = spawn_many(int(seed), k, "sample")
            res = ddnm_plus(
                self.model,
                self.sched,
                op,
                y.repeat(k, *[1] * (y.ndim - 1)),
                sigma_y=sigma_y,
                steps=self.steps,
                settings=SamplerSettings(eta=self.eta),
                generator=gens,
                trace=True,
            )
            self._cache[key] = (res, trace_frames(res, 0, self.zoom, spread=k > 1))
        return self._cache[key]

    def is_cached(self, task: str, sigma_y: float, seed: int) -> bool:
        return (task, round(float(sigma_y), 4), int(seed)) in self._cache

    def widget(self):
        import ipywidgets as w

        res, frames = self.run(self.task, self.sigma_y, self.seed)
        n = len(frames)
        narrow = {"description_width": "45px"}
        task = w.Dropdown(
            options=list(self.tasks), value=self.task, description="task", style=narrow, layout=w.Layout(width="230px")
        )
        sig = w.FloatSlider(
            value=self.sigma_y,
            min=0.0,
            max=0.3,
            step=0.05,
            description="σ_y",
            continuous_update=False,
            style=narrow,
            layout=w.Layout(width="300px", min_width="240px"),
        )
        seed = w.BoundedIntText(
            value=self.seed, min=0, max=10_000, description="seed", style=narrow, layout=w.Layout(width="150px")
        )
        step = w.IntSlider(
            value=1, min=1, max=n, description="step", style=narrow, layout=w.Layout(width="100%", max_width="700px")
        )
        width = _strip_width(self.zoom, self.samples > 1)  # the strip's own width: never stretched, so titles stay put
        img = w.Image(value=frames[0], format="png", layout=w.Layout(width=f"{width}px", max_width="100%"))
        cap = w.HTML()
        state = {"res": res, "frames": frames}

        def show(_=None):
            i = step.value - 1
            img.value = state["frames"][i]
            res = state["res"]
            scale = f"null panel ±{null_scale(res):.2f} (one scale for all steps)"
            cap.value = f"<code>{_step_label(i, len(state['frames']))}   {_caption(res.trace[i])}   {scale}</code>"

        def rerun(_=None):
            if not self.is_cached(task.value, sig.value, seed.value):
                img.value = _png(_faded(state["frames"][step.value - 1]))
                cap.value = "<b>computing a new run…</b>"
            state["res"], state["frames"] = self.run(task.value, sig.value, seed.value)
            step.max = len(state["frames"])
            show()

        step.observe(show, "value")
        for c in (task, sig, seed):
            c.observe(rerun, "value")
        show()
        controls = w.HBox([task, sig, seed], layout=w.Layout(flex_flow="row wrap"))
        return w.VBox([controls, step, img, cap])


def _faded(png: bytes) -> np.ndarray:
    """A PNG frame washed towards white: shown while a new run is computed."""
    import io

    from PIL import Image

    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32)
    return (0.3 * arr + 0.7 * 255).astype(np.uint8)
